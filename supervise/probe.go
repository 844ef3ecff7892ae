package supervise

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
)

// started returns nil once g serves after a start: for Gunicorn a request
// answered on its probe listener (and one health pass where a check exists);
// for a process, still running one second after start (and one health pass).
// It gives up after the app's start_timeout.
func (p *healthProber) started(ctx context.Context, g generation) error {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.StartTimeout)
	defer cancel()
	if p.cfg.Kind == config.KindProcess {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-g.Done():
			return fmt.Errorf("exited during start: %s", g.Exit())
		case <-ctx.Done():
			return fmt.Errorf("not started within start_timeout %s", p.cfg.StartTimeout)
		case <-t.C:
		}
		if !p.cfg.Health.Enabled {
			return nil
		}
	}
	return p.ready(ctx, g, 1)
}

// check runs one health check of g and reports it to the observer.
func (p *healthProber) check(ctx context.Context, g generation) error {
	start := time.Now()
	err := p.checker.Check(ctx, g.Info().ProbeAddr)
	p.observer.HealthChecked(p.cfg.Name, err == nil, time.Since(start))
	return err
}

// ready waits until g answers (Gunicorn) and passes the health check passes
// consecutive times, checking every gatePause. It returns an error as soon
// as g exits, fails unhealthy_after answered checks in a row (see gate), or
// ctx ends.
func (p *healthProber) ready(ctx context.Context, g generation, passes int) error {
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
			return gt.err()
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
