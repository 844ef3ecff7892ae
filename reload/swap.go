package reload

import (
	"context"
	"errors"
	"fmt"
)

// Keeper is a Host that may keep a swap's previous generation booted,
// unsteered, for a rollback instead of draining it (keep_previous).
type Keeper interface {
	// Keep returns nil when old is kept (the Host stops it later), or why
	// it is not (see Standing.KeepRefusal); Swap drains it then.
	Keep(ctx context.Context, old Gen) error
}

// Swap starts a complete new generation on the held sockets, waits for it to
// be ready and healthy, commits it, then drains old, unless h keeps it
// (Keeper). It returns the new generation, or a *Failure with old still
// serving.
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
	if old != nil && kept(context.WithoutCancel(ctx), h, old, progress) {
		return g, nil
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

// kept reports whether h keeps old (see Keeper), saying why not where
// there is a reason (an app without keep_previous has none).
func kept(ctx context.Context, h Host, old Gen, progress Progress) bool {
	k, ok := h.(Keeper)
	if !ok {
		return false
	}
	err := k.Keep(ctx, old)
	switch {
	case err == nil:
		progress(fmt.Sprintf("keeping %s booted and unsteered for a rollback (keep_previous)", old))
	case !errors.Is(err, errNoWindow):
		progress(fmt.Sprintf("warning: draining %s: %v", old, err))
	}
	return err == nil
}
