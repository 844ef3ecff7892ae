package supervise

import (
	"context"
	"fmt"
	"sync"
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
	unlockReaper := func() {}
	var once sync.Once
	thaw = func() { once.Do(func() { unlockReaper(); close(thawCh) }) }
	if state, err = m.freezeOwners(ctx, thawCh); err == nil {
		unlockReaper = m.reaper.Pause()
		state.Sockets, err = m.handoverSockets()
	}
	if err != nil {
		thaw()
		return nil, nil, err
	}
	return state, thaw, nil
}

// freezeOwners has every owner record its state and hold still until thaw
// closes (see freeze), then binds again the closed listeners of the
// stopped apps: the next image takes sockets for every listener.
func (m *Manager) freezeOwners(ctx context.Context, thaw <-chan struct{}) (*upgrade.Handover, error) {
	state := &upgrade.Handover{Version: upgrade.HandoverVersion}
	for _, a := range m.owners() {
		var st upgrade.AppHandover
		if err := a.send(ctx, freezeMsg{call: newCall(), state: &st, thaw: thaw}); err != nil {
			return nil, fmt.Errorf("app %s: %w", a.cfg.Name, err)
		}
		st.Seq = m.slot(a.cfg.Name).genSeq.Load()
		if l := m.view(a.cfg.Name).log; l != nil {
			st.Log = l.Recent(upgrade.LogHandoverBytes)
		}
		state.Apps = append(state.Apps, st)
	}
	for _, a := range m.owners() {
		if err := m.relisten(a.cfg); err != nil {
			return nil, err
		}
	}
	return state, nil
}

// handoverSockets returns the hand-over records of every app's listeners
// (see listen.Table.Handover), by app; an app without listeners has none.
func (m *Manager) handoverSockets() (map[string][]upgrade.SocketHandover, error) {
	out := map[string][]upgrade.SocketHandover{}
	for _, v := range m.views() {
		hs, err := v.table.Handover()
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", v.name, err)
		}
		if len(hs) > 0 {
			out[v.name] = upgrade.SocketsOf(hs)
		}
	}
	return out, nil
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
	st.Name, st.Want, st.Restarts, st.Healthy = a.cfg.Name, a.wants(), a.restarts, a.health.healthy
	st.LastExit, st.LastReload, st.Reloads = a.lastExit, a.lastReload, a.reloads
	if g, ok := a.gen.(handedOver); ok && !a.gen.Exited() {
		st.Gen = g.Handover()
	}
	m.reply <- nil
	<-m.thaw
}

// wants reports whether the app is meant to run (a start is due or holds):
// not stopped, nor stopping without a start to follow.
func (a *appOwner) wants() bool {
	return a.state != status.Stopped && (a.state != status.Stopping || a.thenStart)
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

// restoreApp puts slot s's owner back in the state the previous image
// left: its generation keeps running, unaware. It returns true when the
// app needs no start (it was handed over running, or stopped by request).
func (m *Manager) restoreApp(s *appSlot, st upgrade.AppHandover) (started bool) {
	a := s.owner
	m.restoreLog(a.cfg.Name, st.Log)
	a.restarts, a.lastExit, a.lastReload = st.Restarts, st.LastExit, st.LastReload
	if st.Reloads != nil {
		a.reloads = st.Reloads
	}
	s.genSeq.Store(st.Seq)
	if st.Gen == nil {
		return !st.Want
	}
	a.gen = m.adoptHandedOver(a.cfg, st.Gen)
	a.state, a.attempted, a.health.healthy = status.Running, true, st.Healthy
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
