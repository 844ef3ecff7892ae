package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/status"
	"github.com/gunisup/supervisor/supervise"
)

// ActMany implements control.BulkBackend.
func (b backend) ActMany(ctx context.Context, verb string, targets []string) ([]control.AppResult, error) {
	names, err := b.m.Config().Resolve(targets)
	if err != nil {
		return nil, wireError(err)
	}
	since := time.Now()
	errs, err := b.m.Act(ctx, verb, names)
	if err != nil {
		return nil, wireError(err)
	}
	out := make([]control.AppResult, len(names))
	for i, n := range names {
		out[i] = result(n, errs[n])
	}
	if verb == "stop" {
		b.noteKills(out, since)
	}
	return out, nil
}

// noteKills notes on each result of out whose app's generation was killed
// after since (it outlived its stop signal for stop_timeout) that KILL
// ended it.
func (b backend) noteKills(out []control.AppResult, since time.Time) {
	snaps := map[string]status.AppSnapshot{}
	for _, s := range b.m.Snapshots() {
		snaps[s.Name] = s
	}
	for i := range out {
		s, ok := snaps[out[i].App]
		if !ok || s.LastExit == nil || s.LastExit.Signal != int(unix.SIGKILL) || s.LastExit.Time.Before(since) {
			continue
		}
		cfg := b.m.Config().App(out[i].App)
		if cfg == nil || cfg.StopSignal == unix.SIGKILL {
			continue
		}
		sig := "SIGTERM"
		if s, ok := cfg.StopSignal.(unix.Signal); ok {
			sig = unix.SignalName(s)
		}
		out[i].Note = fmt.Sprintf("killed with KILL: it outlived %s for stop_timeout %s", sig, cfg.StopTimeout)
	}
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
