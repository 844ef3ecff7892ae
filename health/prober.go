package health

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
)

// Target is the generation a Prober watches: only whether and how it ended.
type Target interface {
	// Done is closed once the generation's main process has exited.
	Done() <-chan struct{}
	// Exited reports whether Done is closed.
	Exited() bool
	// ExitReason says how it ended; valid once Done is closed.
	ExitReason() string
}

// CheckObserver hears of every check a Prober runs.
type CheckObserver interface {
	HealthChecked(app string, ok bool, took time.Duration)
}

// Prober decides whether a generation of one app serves: its Checker runs
// the checks, a Gate judges them.
type Prober struct {
	Cfg      *config.App
	Checker  *Checker
	Observer CheckObserver
}

// Started returns nil once g serves after a start (see Ready, one pass),
// or an error when it does not within the app's start_timeout. addr is g's
// probe listener ("" for none).
func (p *Prober) Started(ctx context.Context, g Target, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, p.Cfg.StartTimeout)
	defer cancel()
	return p.Ready(ctx, g, addr, 1)
}

// settle returns nil once a process has run for d (the app's
// start_settle), or an error when it exits first or ctx ends.
func settle(ctx context.Context, g Target, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-g.Done():
		return fmt.Errorf("exited within %s of its start: %s", d, g.ExitReason())
	case <-ctx.Done():
		return readyErr(ctx, nil)
	case <-t.C:
		return nil
	}
}

// Check runs one health check against addr and reports it to the observer.
// It returns the check's error (nil for a pass).
func (p *Prober) Check(ctx context.Context, addr string) error {
	start := time.Now()
	err := p.Checker.Check(ctx, addr)
	p.Observer.HealthChecked(p.Cfg.Name, err == nil, time.Since(start))
	return err
}

// Ready waits until g has started (Gunicorn: a request answered on its
// probe listener addr; a process: still running after its start_settle) and
// passes the health check passes consecutive times, checking every
// GatePause. It returns an error as soon as g exits, fails unhealthy_after
// answered checks in a row (see Gate), or ctx ends.
func (p *Prober) Ready(ctx context.Context, g Target, addr string, passes int) error {
	if p.Cfg.Kind == config.KindProcess {
		if err := settle(ctx, g, p.Cfg.StartSettle); err != nil {
			return err
		}
	}
	answered := p.Cfg.Kind == config.KindProcess || addr == ""
	gt := NewGate(p.Cfg, passes)
	for {
		if g.Exited() {
			return fmt.Errorf("exited: %s", g.ExitReason())
		}
		var err error
		if !answered {
			if err = p.Checker.Answered(ctx, addr, time.Second); err == nil {
				if !p.Cfg.Health.Enabled {
					return nil
				}
				answered = true
			}
		}
		if answered {
			err = p.Check(ctx, addr)
		}
		switch gt.Observe(err) {
		case Passed:
			return nil
		case Rejected:
			return rejected(g, gt)
		}
		t := time.NewTimer(GatePause)
		select {
		case <-g.Done():
			t.Stop()
			return fmt.Errorf("exited: %s", g.ExitReason())
		case <-ctx.Done():
			t.Stop()
			return readyErr(ctx, gt.Last())
		case <-t.C:
		}
	}
}

// exitGrace is how long a generation whose probes are refused may take to
// exit: a Gunicorn master that halts (a worker failed to boot) closes its
// listeners first, and its exit status says more than the refusals.
const exitGrace = time.Second

// rejected returns why the gate rejected g: its exit when refused probes
// were the last failure and it exits within exitGrace, else the failures.
func rejected(g Target, gt *Gate) error {
	if !Refused(gt.Last()) {
		return gt.Err()
	}
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-g.Done():
		return fmt.Errorf("exited: %s", g.ExitReason())
	case <-t.C:
		return gt.Err()
	}
}

// readyErr names why Ready gave up: the deadline (with the last failed
// check) or the cancellation's cause.
func readyErr(ctx context.Context, last error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if last != nil {
			return fmt.Errorf("not ready in time: last check: %w", last)
		}
		return errors.New("not ready in time")
	}
	return context.Cause(ctx)
}
