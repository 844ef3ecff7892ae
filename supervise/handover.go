package supervise

import (
	"context"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/status"
	"github.com/gunisup/supervisor/upgrade"
)

// Freeze stops every app owner and the reaper where they stand and returns
// their state. While frozen nothing changes: exits stay unreaped (zombies)
// for the next image to collect with their real status. thaw undoes it (the
// exec failed); it is safe to call more than once. A reload in progress
// refuses the freeze (ErrBusy): nothing is frozen then. The state names
// the descriptors of the held sockets and of their steering; they stay
// the Manager's (Freeze neither closes nor duplicates any), so a thawed
// Manager goes on with them.
func (m *Manager) Freeze(ctx context.Context) (state *upgrade.Handover, thaw func(), err error) {
	thawCh := make(chan struct{})
	var once bool
	var unlockReaper func()
	thaw = func() {
		if once {
			return
		}
		once = true
		if unlockReaper != nil {
			unlockReaper()
		}
		close(thawCh)
	}
	state = &upgrade.Handover{Version: upgrade.HandoverVersion, Sockets: map[string][]upgrade.SocketHandover{}}
	for _, a := range m.owners() {
		var st upgrade.AppHandover
		if err := a.send(ctx, freezeMsg{call: newCall(), state: &st, thaw: thawCh}); err != nil {
			thaw()
			return nil, nil, fmt.Errorf("app %s: %w", a.cfg.Name, err)
		}
		st.Seq = m.slot(a.cfg.Name).genSeq.Load()
		if l := m.view(a.cfg.Name).log; l != nil {
			st.Log = l.Recent(upgrade.LogHandoverBytes)
		}
		state.Apps = append(state.Apps, st)
	}
	for _, a := range m.owners() {
		// A stopped app's closed listeners are bound again: the next image
		// takes sockets for every listener.
		if err := m.relisten(a.cfg); err != nil {
			thaw()
			return nil, nil, err
		}
	}
	unlockReaper = m.reaper.Pause()
	for name, v := range m.views() {
		hs, err := v.table.Handover()
		if err != nil {
			thaw()
			return nil, nil, fmt.Errorf("app %s: %w", name, err)
		}
		if len(hs) > 0 {
			state.Sockets[name] = upgrade.SocketsOf(hs)
		}
	}
	return state, thaw, nil
}

// freeze is the owner's side of Freeze: it records the state, answers, and
// blocks until thawed (or forever, if the process execs). It refuses
// (ErrBusy) while a reload runs, a retired generation is still stopping or
// a generation is kept for a rollback: the next image would not know those
// generations.
func (a *appOwner) freeze(m freezeMsg) {
	if a.reload != nil || len(a.retiring) > 0 {
		m.reply <- fmt.Errorf("%w: app %s: a reload or restart is in progress", ErrBusy, a.cfg.Name)
		return
	}
	if k := a.kept; k != nil {
		m.reply <- fmt.Errorf("%w: app %s keeps %s for a rollback for %s more (keep_previous): roll back, or upgrade once the window ends", ErrBusy, a.cfg.Name, k.gen, time.Until(k.until).Round(time.Second))
		return
	}
	if _, orphan := a.gen.(*gen.Orphan); orphan {
		m.reply <- fmt.Errorf("%w: app %s: %s serves, which the next image could not track; reload the app first", ErrBusy, a.cfg.Name, a.gen)
		return
	}
	st := m.state
	st.Name = a.cfg.Name
	st.Want = a.wants()
	st.Restarts = a.restarts
	st.LastExit = a.lastExit
	st.LastReload = a.lastReload
	st.Reloads = a.reloads
	st.Healthy = a.health.healthy
	if g, ok := a.gen.(handedOver); ok && !a.gen.Exited() {
		st.Gen = g.Handover()
	}
	m.reply <- nil
	<-m.thaw
}

// wants reports whether the app is meant to run (a start is due or holds).
func (a *appOwner) wants() bool {
	switch a.state {
	case status.Stopped:
		return false
	case status.Stopping:
		return a.thenStart
	}
	return true
}

// handedOver is a generation that can be described to the next image.
type handedOver interface{ Handover() *upgrade.GenHandover }

// restoreAll puts each app st hands over back in the state the previous
// image left (see restoreApp); nil st: nothing was handed over.
func (m *Manager) restoreAll(st *upgrade.Handover) {
	if st == nil {
		return
	}
	for _, app := range st.Apps {
		if s := m.slot(app.Name); s != nil {
			s.restored, s.needsNoStart = true, m.restoreApp(s, app)
		}
	}
}

// restoreApp puts slot s's owner back in the state the previous image left: its
// generation keeps running, unaware. It returns true when the app needs no
// start (it was handed over running, or stopped by request).
func (m *Manager) restoreApp(s *appSlot, st upgrade.AppHandover) (started bool) {
	a := s.owner
	m.restoreLog(a.cfg.Name, st.Log)
	a.restarts = st.Restarts
	a.lastExit = st.LastExit
	a.lastReload = st.LastReload
	if st.Reloads != nil {
		a.reloads = st.Reloads
	}
	s.genSeq.Store(st.Seq)
	if st.Gen == nil {
		return !st.Want
	}
	a.gen = m.adoptHandedOver(a.cfg, st.Gen)
	a.state = status.Running
	a.attempted = true
	a.health.healthy = st.Healthy
	a.publish()
	return true
}

// restoreLog makes lines, the recent output the previous image handed
// over, app's history (see logs.App.Preload).
func (m *Manager) restoreLog(app string, lines []logs.Line) {
	if l := m.view(app).log; l != nil {
		l.Preload(lines)
	}
}

// adoptHandedOver wraps generation h of app, which the previous image ran
// (see gen.Spawner.Adopt): a Gunicorn master's first stop goes through
// the app's held sockets.
func (m *Manager) adoptHandedOver(app *config.App, h *upgrade.GenHandover) *gen.Generation {
	var stop []*listen.Socket
	if app.Kind == config.KindGunicorn {
		stop = m.view(app.Name).table.Sockets()
	}
	return m.spawner.Adopt(m.genApp(app), h, stop)
}
