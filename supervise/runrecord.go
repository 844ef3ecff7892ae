package supervise

import (
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
)

// factsOf returns app's run facts, nil for an app without a slot.
func (m *Manager) factsOf(app string) *recovery.Facts {
	if s := m.slot(app); s != nil {
		return &s.facts
	}
	return nil
}

// RecordRunState makes WriteRunState write run_dir/state.json, starting
// from prev (the predecessor's record, nil for none): the groups and cgroups
// of prev that still hold processes are carried over until they are gone.
// Without prev, a record this process wrote (before a self-upgrade's exec)
// is the start, and its apps' gated releases are kept; the remembered
// releases (for a rollback) are kept either way.
func (m *Manager) RecordRunState(prev *recovery.RunState) {
	m.record.Start(m.runDir, prev, m.keepGated)
}

// keepGated records dir as app's gated release unless one is recorded
// ("" does nothing), and releases as its remembered ones unless some are.
// An app the Manager does not run gets a slot without an owner, which an
// update adding the app takes up.
func (m *Manager) keepGated(app, dir string, releases []string) {
	if dir == "" && len(releases) == 0 {
		return
	}
	m.mu.Lock()
	f := &m.slotFor(app).facts
	m.mu.Unlock()
	f.SetReleases(releases)
	if dir != "" && f.Of().Gated == "" {
		f.SetGated(dir)
	}
}

// WriteRunState writes run_dir/state.json now when its content changed
// since the last write. It does nothing before RecordRunState. A deploy
// records itself through it before it moves the link, and a reload's
// commit once the new generation serves; the daemon calls it every second.
func (m *Manager) WriteRunState() error {
	return m.record.Write(m.RunState)
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
func (m *Manager) pokeRecord() {
	select {
	case m.recordPoke <- struct{}{}:
	default:
	}
}

// RunState records the apps' current process groups, cgroups and
// listeners, keeping from prev (the last record, or the predecessor's) the groups and
// cgroups that still hold processes: a generation being swapped out, or
// orphans not yet drained. tree is one /proc pass.
func (m *Manager) RunState(prev *recovery.RunState, tree *proc.Tree) *recovery.RunState {
	st := recovery.NewRunState()
	for _, a := range m.owners() {
		name := a.cfg.Name
		run := m.factsOf(name).Of()
		snap := a.snap.Load()
		run.AddServing(tree, snap.MasterPID, snap.Generation, snap.Release)
		v := m.view(name)
		if g := v.cgroup; g != nil {
			run.Cgroups = append(run.Cgroups, g.Path)
		}
		run.Listeners = recovery.Listeners(v.table.Entries())
		st.Apps[name] = run
	}
	if prev != nil {
		recovery.CarryOver(st, prev, tree)
	}
	return st
}
