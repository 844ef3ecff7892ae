package reload

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// USR2 runs Gunicorn's own upgrade: USR2 to the old master (which forks and
// execs a new master on the same sockets), wait until every new worker has
// booted, TERM the old master so it drains, then check the new generation
// alone through the probe listener it inherited. A new master that dies or
// never boots is stopped and the old one keeps serving. If the health check
// fails after the old master is gone, the old release is started again as a
// fresh generation on the held sockets and the new one is stopped.
func USR2(ctx context.Context, h Host, old Gen, progress Progress) (Gen, error) {
	if old == nil {
		return nil, &Failure{Cause: "usr2 needs a running master"}
	}
	var budget time.Duration
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	progress(fmt.Sprintf("sending USR2 to %s", old))
	g, err := h.USR2(ctx, old)
	if err != nil {
		f := &Failure{Cause: "new master did not boot: " + err.Error(), Err: err, RolledBack: g != nil}
		if g != nil {
			f.Tail = g.Tail()
			if aerr := h.Abort(g); aerr != nil {
				progress(fmt.Sprintf("warning: stopping %s: %v", g, aerr))
			}
		}
		return nil, f
	}
	progress(fmt.Sprintf("%s booted its workers; draining %s", g, old))
	if err := h.Commit(ctx, g); err != nil {
		return nil, abort(h, g, err, progress)
	}
	if err := h.Drain(context.WithoutCancel(ctx), old); err != nil {
		progress(fmt.Sprintf("warning: draining %s: %v", old, err))
	}
	progress(fmt.Sprintf("%s stopped (%s); checking %s alone", old, old.ExitReason(), g))
	// Booting and draining may have used up most of the reload's time, and
	// the new generation now serves alone: its check gets a fresh budget the
	// size of the whole timeout (a stop still cancels it), so a good release
	// whose boot and drain took nearly the timeout is not rolled back.
	actx, cancel := ctx, context.CancelFunc(func() {})
	if budget > 0 {
		actx, cancel = context.WithTimeout(context.WithoutCancel(ctx), budget)
		stop := context.AfterFunc(ctx, func() {
			if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				cancel()
			}
		})
		defer stop()
	}
	defer cancel()
	rerr := h.Ready(actx, g)
	if rerr == nil {
		progress(fmt.Sprintf("%s is healthy", g))
		return g, nil
	}
	progress(fmt.Sprintf("%s failed: %v; starting the previous release again", g, rerr))
	tail := g.Tail()
	back, err := startAgain(ctx, h, h.Dir(old), progress)
	if err != nil {
		// Nothing better to serve: keep the new generation rather than none.
		return nil, &Failure{Cause: fmt.Sprintf("%v; restarting the previous release failed too: %v (new generation kept)", rerr, err), Tail: tail, Err: rerr}
	}
	if aerr := h.Abort(g); aerr != nil {
		progress(fmt.Sprintf("warning: stopping %s: %v", g, aerr))
	}
	return back, &Failure{Cause: rerr.Error(), Tail: tail, RolledBack: true, Err: rerr}
}
