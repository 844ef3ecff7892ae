package supervise

import (
	"context"
	"syscall"

	"github.com/gunisup/supervisor/scale"
	"github.com/gunisup/supervisor/status"
)

// startWorkerCtl starts the worker controller of a's app (see scale.Start)
// and returns the function that stops it and waits for its end.
func (a *appOwner) startWorkerCtl(ctx context.Context) (stop func()) {
	return scale.Start(ctx, a.cfg, a.env.workerStats(), scaleOwner{a}, a.env.log())
}

// scaleOwner is the face an owner shows its worker controller.
type scaleOwner struct{ a *appOwner }

// Serving returns the serving generation's main process and the app's open
// listeners from the owner's snapshot; 0 while the app is not running,
// reloads or has no main process.
func (o scaleOwner) Serving() (int, []scale.Listener) {
	s := o.a.snap.Load()
	if s == nil || s.State != status.Running || s.Reloading || s.MasterPID == 0 {
		return 0, nil
	}
	ls := make([]scale.Listener, 0, len(s.Listeners))
	for _, l := range s.Listeners {
		if l.FD >= 0 && !l.Closed {
			ls = append(ls, scale.Listener{FD: l.FD, Network: l.Network, Address: l.Address})
		}
	}
	return s.MasterPID, ls
}

// SignalMaster sends sig to the tracked generation's main process through
// the owner (signalMsg) and returns its PID.
func (o scaleOwner) SignalMaster(ctx context.Context, sig syscall.Signal) (int, error) {
	var pid int
	err := o.a.send(ctx, signalMsg{call: newCall(), sig: sig, pid: &pid})
	return pid, err
}
