package recovery

import (
	"context"
	"time"
)

// DrainUnadopted waits until ready reports true (polled every 100 ms, for
// at most limit, or until ctx ends), then drains the orphans of every app
// no generation adopted (see Adopt and Drain), each within grace(app), and
// calls after(app) once they are gone: an orphaned Gunicorn master removes
// the names of its Unix sockets as it exits, which the caller restores
// there. A drain that fails is logged; the next app is drained anyway.
func (o *Orphans) DrainUnadopted(ctx context.Context, limit time.Duration, ready func() bool, grace func(app string) time.Duration, after func(app string)) {
	var names []string
	for _, name := range o.Apps() {
		if !o.Adopted(name) {
			names = append(names, name)
		}
	}
	if len(names) == 0 {
		return
	}
	if !waitUntil(ctx, limit, ready) {
		o.logger.Warn("recovery: apps not ready; stopping the previous supervisor's processes anyway", "after", limit)
	}
	for _, name := range names {
		if err := o.Drain(name, grace(name)); err != nil {
			o.logger.Error("recovery", "app", name, "err", err)
		}
		after(name)
	}
	o.logger.Info("recovery: the previous supervisor's processes are gone", "apps", names)
}

// waitUntil polls cond every 100 ms until it reports true (true), or limit
// has passed or ctx ended (false).
func waitUntil(ctx context.Context, limit time.Duration, cond func() bool) bool {
	wait, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-wait.Done():
			return false
		case <-tick.C:
		}
	}
}
