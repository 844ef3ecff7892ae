package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
	"github.com/gunisup/supervisor/supervise"
)

// backend serves the control API from the Manager: it translates the
// Manager's snapshots, strategies and errors into control's wire types.
type backend struct{ m *supervise.Manager }

// Status implements control.Backend.
func (b backend) Status() []control.AppStatus { return appStatuses(b.m.Snapshots()) }

// StartApp implements control.Backend.
func (b backend) StartApp(ctx context.Context, name string) error {
	return wireError(b.m.StartApp(ctx, name))
}

// StopApp implements control.Backend.
func (b backend) StopApp(ctx context.Context, name string) error {
	return wireError(b.m.StopApp(ctx, name))
}

// RestartApp implements control.Backend.
func (b backend) RestartApp(ctx context.Context, name string) error {
	return wireError(b.m.RestartApp(ctx, name))
}

// CheckStrategy implements control.Backend.
func (b backend) CheckStrategy(name string) error {
	_, err := parseStrategy(name)
	return err
}

// Reload implements control.Backend.
func (b backend) Reload(ctx context.Context, name, strategy string, progress control.Progress) control.Outcome {
	st, err := parseStrategy(strategy)
	if err != nil {
		return outcome(err)
	}
	if note := fileChangedNote(b.m, name); note != "" {
		progress(note)
	}
	return outcome(b.m.Reload(withCanary(ctx), name, st, reload.Progress(progress)))
}

// Deploy implements control.Backend.
func (b backend) Deploy(ctx context.Context, name, release, strategy string, progress control.Progress) control.Outcome {
	st, err := parseStrategy(strategy)
	if err != nil {
		return outcome(err)
	}
	return outcome(b.m.Deploy(withCanary(ctx), name, release, st, reload.Progress(progress)))
}

// Rollback implements control.Rollbacker.
func (b backend) Rollback(ctx context.Context, name string, progress control.Progress) control.Outcome {
	return outcome(b.m.Rollback(ctx, name, reload.Progress(progress)))
}

// upgrader serves the control API's upgrade verb from Daemon.Upgrade.
type upgrader struct{ d *Daemon }

// Upgrade implements control.Upgrader.
func (u upgrader) Upgrade(ctx context.Context, progress control.Progress) control.Outcome {
	return outcome(u.d.Upgrade(ctx, reload.Progress(progress)))
}

// parseStrategy maps a ?strategy= value to the Manager's argument: nil for
// "" (the app's configured strategy), or a *control.Error with code
// bad_request for an unknown name.
func parseStrategy(name string) (*strategy.Strategy, error) {
	if name == "" {
		return nil, nil
	}
	st, err := strategy.Parse(name)
	if err != nil {
		return nil, &control.Error{Code: control.CodeBadRequest, Err: err}
	}
	return &st, nil
}

// outcome is the control API's account of a reload, deploy or upgrade that
// returned err: reload's outcome word, the coded error and the failed
// generation's output tail.
func outcome(err error) control.Outcome {
	result, _ := reload.OutcomeOf(err)
	out := control.Outcome{Result: string(result), Err: wireError(err)}
	var f *reload.Failure
	if errors.As(err, &f) {
		out.Tail = f.Tail
	}
	return out
}

// wireError gives the Manager's errors their control API code; nil stays
// nil and other errors pass unchanged (code failed).
func wireError(err error) error {
	var code control.Code
	switch {
	case err == nil:
		return nil
	case errors.Is(err, supervise.ErrNoSuchApp):
		code = control.CodeNotFound
	case errors.Is(err, supervise.ErrBusy):
		code = control.CodeBusy
	case errors.Is(err, supervise.ErrNotRunning):
		code = control.CodeNotRunning
	default:
		return err
	}
	return &control.Error{Code: code, Err: err}
}

// appStatuses translates the Manager's snapshots into the API's app status.
func appStatuses(snaps []status.AppSnapshot) []control.AppStatus {
	out := make([]control.AppStatus, len(snaps))
	for i, s := range snaps {
		out[i] = appStatus(s)
	}
	return out
}

func appStatus(s status.AppSnapshot) control.AppStatus {
	a := control.AppStatus{
		Name: s.Name, Kind: s.Kind, State: control.AppState(s.State.String()),
		Healthy: s.Healthy, HealthChecked: s.HealthChecked,
		MasterPID: s.MasterPID, WorkerPIDs: s.WorkerPIDs, Processes: s.Processes, Generation: s.Generation,
		Release: s.Release, Started: s.Started, Restarts: s.Restarts,
		NextRestart: s.NextRestart, Backoff: s.Backoff,
		Reloading: s.Reloading, Reloads: s.Reloads,
		StatsdBridge: s.StatsdBridge, StatsdAddr: s.StatsdAddr, Message: s.Message,
		Traceback: s.Traceback, LogDropped: s.LogDropped, Comparison: s.Comparison,
		WorkersTarget: s.WorkersTarget, WorkersRecycled: s.WorkersRecycled,
		Required: s.Required, Wanted: s.Wanted, Attempted: s.Attempted,
	}
	if k := s.Kept; k != nil {
		left := max(time.Until(k.Until), 0)
		a.Kept = &control.Kept{Generation: k.Generation, PID: k.PID, Release: k.Release, Until: k.Until, LeftSeconds: left.Seconds()}
	}
	if e := s.LastExit; e != nil {
		a.LastExit = &control.Exit{Code: e.Code, Signal: e.Signal, Time: e.Time}
	}
	if r := s.LastReload; r != nil {
		a.LastReload = &control.LastReload{Strategy: r.Strategy, Result: string(r.Result), Reason: r.Reason, Started: r.Started, Duration: r.Duration}
	}
	if s.Listeners != nil {
		a.Listeners = make([]control.Listener, len(s.Listeners))
		for i, l := range s.Listeners {
			a.Listeners[i] = control.Listener{Address: l.Address, Bound: l.Bound, Network: l.Network, Backlog: l.Backlog, Steering: l.Steering, Closed: l.Closed}
		}
	}
	return a
}

// withCanary carries the canary plan of a control request (control.CanaryOf)
// to the Manager (reload.CanaryOf).
func withCanary(ctx context.Context) context.Context {
	if plan, ok := control.CanaryOf(ctx); ok {
		return reload.WithCanary(ctx, plan)
	}
	return ctx
}
