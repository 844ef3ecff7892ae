// Package reload replaces a serving generation with a new one without
// refusing or failing a request: start the new generation, check it, make it
// the serving one, then drain the old one; on any failure stop the new one and
// leave the old one serving (or, where the old one is already gone, start the
// old release again). It knows nothing of HTTP, TOML or Gunicorn's flags: the
// Host does the work; this package orders the steps and reports them.
package reload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gunisup/supervisor/config"
)

// Gen is one generation as a strategy sees it.
type Gen interface {
	// String names it for humans: "generation 3 (pid 1234)".
	String() string
	// ExitReason says how it ended ("exit 3"); valid once Done is closed.
	ExitReason() string
}

// Host is what a strategy needs from the app's owner.
type Host interface {
	// Spawn starts a fresh generation. dir is the release directory to run
	// in; "" resolves the app's configured directory again (the new release).
	Spawn(ctx context.Context, dir string) (Gen, error)
	// USR2 asks old's master to re-exec itself and returns the new master once
	// it exists and all its workers have booted the app.
	USR2(ctx context.Context, old Gen) (Gen, error)
	// Ready returns nil once g answers on its own probe listener and passes
	// the health check the configured number of consecutive times; an error
	// as soon as g fails the configured number of answered checks in a row,
	// exits, or does not get there within the app's start timeout.
	Ready(ctx context.Context, g Gen) error
	// Commit makes g the serving generation of the app.
	Commit(ctx context.Context, g Gen) error
	// Drain stops g gracefully (TERM, then KILL after the stop timeout) and
	// returns when it has exited.
	Drain(ctx context.Context, g Gen) error
	// Abort stops a generation that failed its checks and waits for its
	// exit. It may have served requests (where the app's sockets are shared,
	// a new generation accepts there before its checks pass): let those
	// finish, within a short bound.
	Abort(g Gen) error
	// Dir is the release directory g runs in.
	Dir(g Gen) string
	// Tail returns the last lines g wrote to stdout/stderr.
	Tail(g Gen) []string
}

// Failure is a reload that did not complete. The serving generation is
// intact: either the old one never stopped, or (RolledBack with Respawned)
// the old release was started again on the held sockets.
type Failure struct {
	// Cause is a one-line reason ("new generation exited: exit 4").
	Cause string
	// Tail holds the failed generation's last output lines (a traceback).
	Tail []string
	// RolledBack is true when a new generation was started and then undone.
	RolledBack bool
	Err        error
}

func (f *Failure) Error() string {
	var b strings.Builder
	b.WriteString(f.Cause)
	if f.RolledBack {
		b.WriteString(" (rolled back)")
	}
	return b.String()
}

func (f *Failure) Unwrap() error { return f.Err }

// Progress receives one human line per phase.
type Progress func(msg string)

// Swap starts a complete new generation on the held sockets, waits for it to
// be ready and healthy, commits it, then drains old. It returns the new
// generation, or a *Failure with old still serving.
func Swap(ctx context.Context, h Host, old Gen, progress Progress) (Gen, error) {
	progress("starting new generation")
	g, err := h.Spawn(ctx, "")
	if err != nil {
		return nil, &Failure{Cause: "cannot start new generation: " + err.Error(), Err: err}
	}
	progress(fmt.Sprintf("started %s in %s; waiting for readiness and health", g, h.Dir(g)))
	if err := h.Ready(ctx, g); err != nil {
		return nil, abort(h, g, err, progress)
	}
	progress(fmt.Sprintf("%s is healthy; switching", g))
	if err := h.Commit(ctx, g); err != nil {
		return nil, abort(h, g, err, progress)
	}
	if old != nil {
		progress(fmt.Sprintf("draining %s", old))
		if err := h.Drain(context.WithoutCancel(ctx), old); err != nil {
			progress(fmt.Sprintf("warning: draining %s: %v", old, err))
		}
		progress(fmt.Sprintf("%s stopped (%s)", old, old.ExitReason()))
	}
	return g, nil
}

// abort stops a failed new generation and describes the failure.
func abort(h Host, g Gen, cause error, progress Progress) error {
	progress(fmt.Sprintf("%s failed: %v; stopping it", g, cause))
	tail := h.Tail(g)
	if err := h.Abort(g); err != nil {
		progress(fmt.Sprintf("warning: stopping %s: %v", g, err))
	}
	return &Failure{Cause: cause.Error(), Tail: tail, RolledBack: true, Err: cause}
}

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
			f.Tail = h.Tail(g)
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
	tail := h.Tail(g)
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

// startAgain starts, gates and commits a fresh generation in release dir
// (the previous one, after a failed take-over), whatever happens to ctx
// meanwhile. A generation that fails is stopped; the error says why.
func startAgain(ctx context.Context, h Host, dir string, progress Progress) (Gen, error) {
	ctx = context.WithoutCancel(ctx)
	back, err := h.Spawn(ctx, dir)
	if err != nil {
		return nil, err
	}
	err = h.Ready(ctx, back)
	if err == nil {
		err = h.Commit(ctx, back)
	}
	if err != nil {
		if aerr := h.Abort(back); aerr != nil {
			progress(fmt.Sprintf("warning: stopping %s: %v", back, aerr))
		}
		return nil, err
	}
	return back, nil
}

// Facts are what the strategy choice knows of an app and its serving
// generation, as plain paths.
type Facts struct {
	// Link is the app's release link ("" when it has none, or it cannot be
	// resolved now).
	Link string
	// LinkTarget is the release Link resolves to now.
	LinkTarget string
	// RunsIn is the release the serving generation runs in.
	RunsIn string
	// FollowsLink is true when an in-place re-exec of the serving generation
	// runs in whatever release Link points at by then.
	FollowsLink bool
}

// Reaches reports whether an in-place re-exec (usr2) of the generation
// described runs the release the link points at: always without a link,
// otherwise when the generation follows the link or already runs there.
func (f Facts) Reaches() bool {
	return f.Link == "" || f.FollowsLink || f.RunsIn == f.LinkTarget
}

// Choose returns the strategy to run for a requested one. An in-place
// re-exec that would not reach the link's release (it would re-exec the old
// release and report success) is replaced by swap, which also starts a
// generation that follows the link for the next in-place reload; reason
// then says why ("" when requested is kept).
func Choose(requested config.Strategy, f Facts) (chosen config.Strategy, reason string) {
	if requested != config.StrategyUSR2 || f.Reaches() {
		return requested, ""
	}
	return config.StrategySwap, fmt.Sprintf("the serving generation runs in %s and was not started from %s, so a USR2 re-exec would not reach %s; using swap", f.RunsIn, f.Link, f.LinkTarget)
}
