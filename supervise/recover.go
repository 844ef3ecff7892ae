package supervise

import (
	"context"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
)

// adopts reports whether app tracks its orphans' serving generation (see
// Options.Orphans and recovery.Orphans.Adopts); never on a take-over from
// a previous image.
func (m *Manager) adopts(opts Options, app *config.App) bool {
	_, held := opts.Sockets[app.Name]
	return opts.Restore == nil && opts.Orphans.Adopts(app, held)
}

// adoptAll has each app that adopts its orphans' serving generation (see
// adopts) track it (see adoptOrphans).
func (m *Manager) adoptAll(opts Options) {
	for _, app := range m.cfg.Apps {
		if m.adopts(opts, app) {
			m.adoptOrphans(m.slot(app.Name), opts.Orphans)
		}
	}
}

// adoptOrphans makes the tracked generation of s's owner its orphans' serving one
// (Starting, counted as handed over: Start does not start it) and has
// Start replace it by a new generation of the release it recovers to.
func (m *Manager) adoptOrphans(s *appSlot, o *recovery.Orphans) {
	a := s.owner
	ad, _ := o.Adopt(a.cfg.Name, a.cfg.StopTimeout) // adoptable: see adopts
	g := &gen.Orphan{Gen: ad.Gen}
	a.gen, a.state, a.attempted = g, status.Starting, true
	a.message = fmt.Sprintf("recovering: %s serves until a new generation passes the gate", g)
	a.publish()
	s.restored, s.needsNoStart, s.recovering, s.recoverDir = true, true, true, ad.Dir
	if ad.Gated != "" {
		s.facts.SetGated(ad.Gated)
	}
	m.logger.Warn("recovery: tracking the previous supervisor's serving generation", "app", a.cfg.Name, "pid", g.PID(), "release", ad.Dir)
}

// recoverApp replaces a's adopted orphan generation by a new generation
// of release dir, through a reload: swap (restart for an app configured to
// restart, which must not overlap). The orphans serve until the new
// generation passes the gate and the steering switches to it; then they
// are drained. If it fails, they go on serving.
func (m *Manager) recoverApp(ctx context.Context, a *appOwner, dir string) {
	if err := m.recoverReload(ctx, a, dir); err != nil {
		m.logger.Error("recovery: no new generation took over; the previous supervisor's processes serve", "app", a.cfg.Name, "err", err)
		return
	}
	m.logger.Info("recovery: a new generation took over from the previous supervisor's processes", "app", a.cfg.Name, "release", dir)
}

// recoverReload is recoverApp's reload: swap, or restart for an app
// configured to restart; it returns the reload's error.
func (m *Manager) recoverReload(ctx context.Context, a *appOwner, dir string) error {
	s := strategy.Swap
	if a.cfg.Reload.Strategy.Exclusive() {
		s = strategy.Restart
	}
	return a.send(ctx, reloadMsg{call: newCall(), strategy: &s, dir: dir, recovery: true})
}

// DrainOrphans waits until every app is ready (at most limit), then drains
// the orphans no generation adopted, each within its app's stop_timeout
// (the default for an app no longer configured), and restores the held names of
// the app's Unix sockets (see recovery.Orphans.DrainUnadopted).
func (m *Manager) DrainOrphans(ctx context.Context, o *recovery.Orphans, limit time.Duration) {
	o.DrainUnadopted(ctx, limit, func() bool { return m.Readiness().Serving }, m.stopTimeout, m.relink)
}

// factsOf returns app's run facts, nil for an app without a slot.
func (m *Manager) factsOf(app string) *recovery.Facts {
	if s := m.slot(app); s != nil {
		return &s.facts
	}
	return nil
}

// RecordRunState makes WriteRunState write run_dir/state.json, starting
// from prev (the predecessor's record, nil for none; see
// recovery.Recorder.Start). What it keeps of an app the Manager does not
// run goes into a slot without an owner, which an update adding the app
// takes up.
func (m *Manager) RecordRunState(prev *recovery.RunState) {
	m.record.Start(m.runDir, prev, func(app string) *recovery.Facts {
		m.mu.Lock()
		defer m.mu.Unlock()
		return &m.slotFor(app).facts
	})
}

// WriteRunState writes run_dir/state.json now when its content changed
// since the last write. It does nothing before RecordRunState. A deploy
// records itself through it before it moves the link, and a reload's
// commit once the new generation serves; the daemon calls it every second.
func (m *Manager) WriteRunState() error {
	return m.record.Write(m.recordApps)
}

// recordApps adds to st each app's record (see recovery.Facts.Run): its
// facts, serving generation, cgroup and listeners; tree is one /proc pass.
func (m *Manager) recordApps(st *recovery.RunState, tree *proc.Tree) {
	for _, a := range m.owners() {
		name, snap := a.cfg.Name, a.snap.Load()
		s := recovery.Serving{PID: snap.MasterPID, Gen: snap.Generation, Release: snap.Release,
			Listeners: m.view(name).table.Entries(), Cgroup: m.CgroupDir(name)}
		st.Apps[name] = m.factsOf(name).Run(tree, s)
	}
}

// ReleasesState is the run state a clean stop leaves: the apps' remembered
// releases only (see recovery.RunState.ReleasesOnly), nil when none has any.
func (m *Manager) ReleasesState() *recovery.RunState {
	st := recovery.NewRunState()
	for _, a := range m.owners() {
		st.Apps[a.cfg.Name] = m.factsOf(a.cfg.Name).Of()
	}
	return st.ReleasesOnly()
}

// recordNow writes the run state at once; a failure is logged (the next
// periodic write tries again).
func (m *Manager) recordNow(app string) {
	if err := m.WriteRunState(); err != nil {
		m.logger.Warn("recovery record", "app", app, "err", err)
	}
}

// RecordPokes delivers a token when the run state should be written soon
// (coalesced): a generation was spawned or passed the gate.
func (m *Manager) RecordPokes() <-chan struct{} { return m.recordPoke }

// pokeRecord asks for a run state write soon; it never blocks.
func (m *Manager) pokeRecord() { offer(m.recordPoke, struct{}{}) }
