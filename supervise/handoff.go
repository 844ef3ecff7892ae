package supervise

import (
	"context"
	"fmt"

	"github.com/gunisup/supervisor/config"
)

// handoffMsg asks an owner to give its state to the owner that replaces it
// (an update changed the app's configuration) and to end its goroutine
// without touching the processes.
type handoffMsg struct {
	call
	out *ownerState
}

// ownerState is what an owner hands to its successor.
type ownerState struct {
	state      State
	wanted     bool
	gen        generation
	restarts   int
	attempted  bool
	lastExit   *ExitInfo
	lastReload *ReloadResult
	reloads    map[string]int
	health     healthState
	message    string
}

// handoff is the owner's side of a replacement. It refuses (ErrBusy, and
// the owner runs on) while a reload, a restart or a stop is in progress;
// otherwise it fills m.out, answers and reports true: the owner must end.
// A scheduled restart is dropped: the successor starts the app instead.
func (a *appOwner) handoff(m handoffMsg) bool {
	if a.reload != nil || len(a.retiring) > 0 || a.state == StateStopping {
		m.reply <- fmt.Errorf("%w: app %s: a reload, restart or stop is in progress", ErrBusy, a.cfg.Name)
		return false
	}
	a.cancelReady()
	a.cancelTimer()
	st := ownerState{
		state: a.state, wanted: a.wants(), gen: a.gen, restarts: a.restarts, attempted: a.attempted,
		lastExit: a.lastExit, lastReload: a.lastReload, reloads: a.reloads, health: a.health, message: a.message,
	}
	if st.gen == nil && st.state != StateStopped {
		st.state = StateStopped // backing off: the successor starts at once
	}
	st.health.busy = false // a check in flight reports to this owner, which is gone
	*m.out = st
	m.reply <- nil
	return true
}

// adopt gives a new owner, before its goroutine runs, the state of the one
// it replaces; a generation still starting is waited for again.
func (a *appOwner) adopt(ctx context.Context, st ownerState) {
	a.state, a.gen, a.restarts, a.attempted = st.state, st.gen, st.restarts, st.attempted
	a.lastExit, a.lastReload, a.health, a.message = st.lastExit, st.lastReload, st.health, st.message
	if st.reloads != nil {
		a.reloads = st.reloads
	}
	if a.state == StateStarting && a.gen != nil {
		a.awaitReady(ctx, a.gen)
	}
	a.publish()
}

// replaceOwner swaps old, app cfg.Name's owner, for one running cfg and
// returns it: the running generation passes to it untouched. An app that
// was meant to run but had no generation (backing off) is started (an
// error then comes with the new owner, installed). It returns ErrBusy (no
// owner) while a reload, restart or stop of the app runs.
func (m *Manager) replaceOwner(ctx context.Context, old *appOwner, cfg *config.App) (*appOwner, error) {
	var st ownerState
	if err := old.send(ctx, handoffMsg{call: newCall(), out: &st}); err != nil {
		return nil, err
	}
	<-old.exited
	a := newAppOwner(m, cfg)
	a.adopt(m.runCtx, st)
	m.mu.Lock()
	m.apps[cfg.Name].owner = a
	for i, o := range m.order {
		if o == old {
			m.order[i] = a
		}
	}
	m.mu.Unlock()
	go a.run(m.runCtx)
	if st.wanted && st.gen == nil {
		return a, a.send(ctx, startMsg{newCall()})
	}
	return a, nil
}
