package daemon

import (
	"context"
	"errors"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/supervise"
)

// ActMany implements control.BulkBackend.
func (b backend) ActMany(ctx context.Context, verb string, targets []string) ([]control.AppResult, error) {
	names, err := b.m.Config().Resolve(targets)
	if err != nil {
		return nil, wireError(err)
	}
	errs, err := b.m.Act(ctx, verb, names)
	if err != nil {
		return nil, wireError(err)
	}
	out := make([]control.AppResult, len(names))
	for i, n := range names {
		out[i] = result(n, errs[n])
	}
	return out, nil
}

// Resolve implements control.Resolver with the configuration's targets.
func (b backend) Resolve(targets []string) ([]string, error) {
	names, err := b.m.Config().Resolve(targets)
	return names, wireError(err)
}

// SignalApps implements control.Signaller.
func (b backend) SignalApps(ctx context.Context, names []string, sig unix.Signal) []control.AppResult {
	out := make([]control.AppResult, len(names))
	for i, n := range names {
		pid, err := b.m.SignalApp(ctx, n, sig)
		out[i] = control.ResultOf(n, wireError(err))
		out[i].PID = pid
	}
	return out
}

// result is app n's AppResult after err, with the output tail of a failed
// start.
func result(n string, err error) control.AppResult {
	r := control.ResultOf(n, wireError(err))
	var se *supervise.StartError
	if errors.As(err, &se) {
		r.Tail = se.Tail
	}
	return r
}
