// Package reload replaces a serving generation with a new one without
// refusing or failing a request: start the new generation, check it, make it
// the serving one, then drain the old one; on any failure stop the new one and
// leave the old one serving (or, where the old one is already gone, start the
// old release again). It knows nothing of HTTP, TOML or Gunicorn's flags: the
// Host does the work; this package orders the steps and reports them.
package reload

import (
	"context"
	"fmt"
	"strings"

	"github.com/gunisup/supervisor/reload/strategy"
)

// Gen is one generation as a strategy sees it.
type Gen interface {
	// String names it for humans: "generation 3 (pid 1234)".
	String() string
	// ExitReason says how it ended ("exit 3"); valid once Done is closed.
	ExitReason() string
	// Tail returns the last lines it wrote to stdout/stderr.
	Tail() []string
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

// abort stops a failed new generation and describes the failure.
func abort(h Host, g Gen, cause error, progress Progress) error {
	progress(fmt.Sprintf("%s failed: %v; stopping it", g, cause))
	tail := g.Tail()
	if err := h.Abort(g); err != nil {
		progress(fmt.Sprintf("warning: stopping %s: %v", g, err))
	}
	return &Failure{Cause: cause.Error(), Tail: tail, RolledBack: true, Err: cause}
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
	// Steered is true when some listener of the app is steered (BPF or
	// rename) rather than shared.
	Steered bool
}

// Reaches reports whether an in-place re-exec (usr2) of the generation
// described runs the release the link points at: always without a link,
// otherwise when the generation follows the link or already runs there.
func (f Facts) Reaches() bool {
	return f.Link == "" || f.FollowsLink || f.RunsIn == f.LinkTarget
}

// Choose returns the strategy to run for a requested one. An in-place
// re-exec that would not reach the link's release (it would re-exec the old
// release and report success) is replaced by its fallback (swap), which also starts a
// generation that follows the link for the next in-place reload; reason
// then says why ("" when requested is kept).
func Choose(requested strategy.Strategy, f Facts) (chosen strategy.Strategy, reason string) {
	if !requested.ReExec() || f.Reaches() {
		return requested, ""
	}
	chosen = requested.Fallback()
	return chosen, fmt.Sprintf("the serving generation runs in %s and was not started from %s, so a %s re-exec would not reach %s; using %s", f.RunsIn, f.Link, requested, f.LinkTarget, chosen)
}

// Ungated is the progress line of an in-place re-exec s of an app with
// steered listeners: what its gate does and does not protect ("" for any
// other strategy or app). The new master inherits the serving sockets.
func (f Facts) Ungated(s strategy.Strategy) string {
	if !s.ReExec() || !f.Steered {
		return ""
	}
	return fmt.Sprintf("%s: the new master inherits the serving sockets, so its workers take connections as soon as they boot; "+
		"the gate decides only whether the old master is drained or the new one stopped (use %s to keep traffic from an unchecked generation)", s, s.Fallback())
}
