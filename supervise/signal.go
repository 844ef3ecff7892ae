package supervise

import (
	"context"
	"fmt"
	"syscall"
)

// signalMsg asks the owner to send sig to the tracked generation's main
// process; answered ErrNotRunning when there is none. pid receives the
// process signalled.
type signalMsg struct {
	call
	sig syscall.Signal
	pid *int
}

// SignalApp sends sig to the main process of app name's serving generation
// (a Gunicorn master: TTIN adds a worker, TTOU removes one) and returns its
// PID; ErrNotRunning when the app has none.
func (m *Manager) SignalApp(ctx context.Context, name string, sig syscall.Signal) (int, error) {
	var pid int
	if err := m.ask(ctx, name, signalMsg{call: newCall(), sig: sig, pid: &pid}); err != nil {
		return 0, err
	}
	return pid, nil
}

// onSignal sends m's signal to the tracked generation off the owner's
// goroutine (a stop signal to a Gunicorn master may wait for its turn on
// the app's Unix sockets, see gen.Generation.Signal).
func (a *appOwner) onSignal(m signalMsg) {
	g := a.gen
	if g == nil || g.Exited() {
		m.reply <- fmt.Errorf("%w: app %s has no running process to signal", ErrNotRunning, a.cfg.Name)
		return
	}
	*m.pid = g.Info().PID
	go func() { m.reply <- g.Signal(m.sig) }()
}
