package supervise

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/health"
)

// started returns nil once g serves after a start (see ready, one pass),
// or an error when it does not within the app's start_timeout.
func (p *healthProber) started(ctx context.Context, g generation) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	return p.ready(ctx, g, 1)
}

// settle returns nil once a process has run for d (the app's
// start_settle), or an error when it exits first or ctx ends.
func settle(ctx context.Context, g generation, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-g.Done():
		return fmt.Errorf("exited within %s of its start: %s", d, g.Exit())
	case <-ctx.Done():
		return readyErr(ctx, nil)
	case <-t.C:
		return nil
	}
}

// check runs one health check of g and reports it to the observer.
func (p *healthProber) check(ctx context.Context, g generation) error {
	start := time.Now()
	err := p.checker.Check(ctx, g.Info().ProbeAddr)
	p.observer.HealthChecked(p.cfg.Name, err == nil, time.Since(start))
	return err
}

// ready waits until g has started (Gunicorn: a request answered on its
// probe listener; a process: still running after its start_settle) and passes
// the health check passes consecutive times, checking every gatePause. It
// returns an error as soon as g exits, fails unhealthy_after answered checks
// in a row (see gate), or ctx ends.
func (p *healthProber) ready(ctx context.Context, g generation, passes int) error {
	if p.cfg.Kind == config.KindProcess {
		if err := settle(ctx, g, p.cfg.StartSettle); err != nil {
			return err
		}
	}
	addr := g.Info().ProbeAddr
	answered := p.cfg.Kind == config.KindProcess || addr == ""
	gt := newGate(p.cfg, passes)
	for {
		if g.Exited() {
			return fmt.Errorf("exited: %s", g.Exit())
		}
		var err error
		if !answered {
			if err = p.checker.Answered(ctx, addr, time.Second); err == nil {
				if !p.cfg.Health.Enabled {
					return nil
				}
				answered = true
			}
		}
		if answered {
			err = p.check(ctx, g)
		}
		switch gt.observe(err) {
		case gatePassed:
			return nil
		case gateRejected:
			return rejected(g, gt)
		}
		t := time.NewTimer(gatePause)
		select {
		case <-g.Done():
			t.Stop()
			return fmt.Errorf("exited: %s", g.Exit())
		case <-ctx.Done():
			t.Stop()
			return readyErr(ctx, gt.last)
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
func rejected(g generation, gt *gate) error {
	if !health.Refused(gt.last) {
		return gt.err()
	}
	t := time.NewTimer(exitGrace)
	defer t.Stop()
	select {
	case <-g.Done():
		return fmt.Errorf("exited: %s", g.Exit())
	case <-t.C:
		return gt.err()
	}
}

// readyErr names why ready gave up: the deadline (with the last failed
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
