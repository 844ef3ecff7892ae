package supervise

import (
	"context"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
)

// adopts reports whether app tracks its orphans' serving generation (see
// Options.Orphans): it is recorded and alive, and the app's sockets are
// held (taken from the orphans, or systemd's) unless it has none.
func (m *Manager) adopts(opts Options, app *config.App) bool {
	if opts.Orphans == nil || opts.Restore != nil {
		return false
	}
	if _, _, ok := opts.Orphans.Adoptable(app.Name); !ok {
		return false
	}
	_, held := opts.Sockets[app.Name]
	return held || len(app.Listen) == 0
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
	name := a.cfg.Name
	ad, _ := o.Adopt(name, a.cfg.StopTimeout) // adoptable: see adopts
	dir := ad.Dir
	g := &gen.Orphan{Gen: ad.Gen}
	a.gen = g
	a.state = status.Starting
	a.attempted = true
	a.message = fmt.Sprintf("recovering: %s serves until a new generation passes the gate", g)
	a.publish()
	s.restored, s.needsNoStart = true, true
	s.recovering, s.recoverDir = true, dir
	if ad.Gated != "" {
		s.facts.SetGated(ad.Gated)
	}
	m.logger.Warn("recovery: tracking the previous supervisor's serving generation", "app", name, "pid", g.PID(), "release", dir)
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
// (30 s for an app no longer configured), and restores the held names of
// the app's Unix sockets (see recovery.Orphans.DrainUnadopted).
func (m *Manager) DrainOrphans(ctx context.Context, o *recovery.Orphans, limit time.Duration) {
	o.DrainUnadopted(ctx, limit, func() bool { return m.Readiness().Serving }, m.stopTimeout, m.relink)
}
