package reload

import (
	"context"
	"fmt"
)

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
