package reload

import (
	"context"
	"fmt"
)

// Restart stops old, then starts a new generation, gates and commits it:
// the app never runs two generations at once. When the new generation
// cannot start or fails its gate it is stopped and old's release is started
// again; the result is then a *Failure with RolledBack (or without, when the
// old release does not come back either, and nothing serves).
func Restart(ctx context.Context, h Host, old Gen, progress Progress) (Gen, error) {
	var dir string
	if old != nil {
		dir = h.Dir(old)
		progress(fmt.Sprintf("stopping %s", old))
		if err := h.Drain(context.WithoutCancel(ctx), old); err != nil {
			progress(fmt.Sprintf("warning: stopping %s: %v", old, err))
		}
		progress(fmt.Sprintf("%s stopped (%s); starting new generation", old, old.ExitReason()))
	}
	g, err := h.Spawn(ctx, "")
	var cause error
	var tail []string
	switch {
	case err != nil:
		cause = fmt.Errorf("cannot start new generation: %w", err)
	default:
		progress(fmt.Sprintf("started %s in %s; waiting for readiness and health", g, h.Dir(g)))
		if cause = h.Ready(ctx, g); cause == nil {
			cause = h.Commit(ctx, g)
		}
		if cause == nil {
			progress(fmt.Sprintf("%s is healthy", g))
			return g, nil
		}
		progress(fmt.Sprintf("%s failed: %v; stopping it", g, cause))
		tail = g.Tail()
		if aerr := h.Abort(g); aerr != nil {
			progress(fmt.Sprintf("warning: stopping %s: %v", g, aerr))
		}
	}
	if old == nil {
		return nil, &Failure{Cause: cause.Error(), Tail: tail, Err: cause}
	}
	progress(fmt.Sprintf("starting the previous release (%s) again", dir))
	back, err := startAgain(ctx, h, dir, progress)
	if err != nil {
		return nil, &Failure{Cause: fmt.Sprintf("%v; restarting the previous release failed too: %v", cause, err), Tail: tail, Err: cause}
	}
	return back, &Failure{Cause: cause.Error(), Tail: tail, RolledBack: true, Err: cause}
}
