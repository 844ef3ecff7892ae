package supervise

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/status"
)

// ordered runs f once for every owner in set, in parallel, except that an
// owner waits until f has returned for each owner of set it depends on
// (its after and requires); with reverse, an owner waits for the owners of
// set that depend on it instead (the order of a stop; see config.WaitFor). It returns each
// owner's error, keyed by app name, once every f has returned.
func ordered(set []*appOwner, reverse bool, f func(*appOwner) error) map[string]error {
	done := make(map[string]chan struct{}, len(set))
	apps := make([]*config.App, len(set))
	for i, a := range set {
		done[a.cfg.Name] = make(chan struct{})
		apps[i] = a.cfg
	}
	waitFor := config.WaitFor(apps, reverse)
	var mu sync.Mutex
	errs := make(map[string]error, len(set))
	var wg sync.WaitGroup
	for _, a := range set {
		wg.Go(func() {
			defer close(done[a.cfg.Name])
			for _, w := range waitFor[a.cfg.Name] {
				<-done[w]
			}
			err := f(a)
			mu.Lock()
			errs[a.cfg.Name] = err
			mu.Unlock()
		})
	}
	wg.Wait()
	return errs
}

// hasDependents reports whether some app of the configuration starts after a.
func (m *Manager) hasDependents(a *appOwner) bool {
	for _, o := range m.owners() {
		if slices.Contains(o.cfg.Deps(), a.cfg.Name) {
			return true
		}
	}
	return false
}

// startOrdered asks each owner of set to start, in parallel but after the
// apps it names in after and requires have settled (see settle).
func (m *Manager) startOrdered(ctx context.Context, set []*appOwner) map[string]error {
	return ordered(set, false, func(a *appOwner) error {
		if err := m.startAndWait(ctx, a, startMsg{newCall()}); err != nil || !m.hasDependents(a) {
			return err
		}
		return a.settle(ctx)
	})
}

// stopOrdered stops each owner of set, in parallel but before the apps it
// names in after and requires. A stop ends what the app left behind too
// (the owner's finishStop).
func (m *Manager) stopOrdered(ctx context.Context, set []*appOwner) map[string]error {
	return ordered(set, true, func(a *appOwner) error { return a.send(ctx, stopMsg{call: newCall(), refuse: true}) })
}

// settle waits until the app's start has an outcome: running, backing off,
// failed, or stopped after an attempt (a one-shot that finished), polling
// its snapshot; it gives up after start_timeout and a second.
func (a *appOwner) settle(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.StartTimeout+time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		s := a.snap.Load()
		if s.Attempted && s.State != status.Starting && s.State != status.Stopping {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("app %s: start did not settle: %w", a.cfg.Name, ctx.Err())
		case <-tick.C:
		}
	}
}

// Act runs verb (start, stop or restart) on the apps names, honouring their
// order (see ordered), and returns each app's error by name; an unknown
// name or verb is an error wrapping ErrNoSuchApp, and nothing runs then.
func (m *Manager) Act(ctx context.Context, verb string, names []string) (map[string]error, error) {
	var set []*appOwner
	for _, n := range names {
		a, err := m.owner(n)
		if err != nil {
			return nil, err
		}
		set = append(set, a)
	}
	switch verb {
	case "start":
		return m.startOrdered(ctx, set), nil
	case "stop":
		return m.stopOrdered(ctx, set), nil
	case "restart":
		return ordered(set, false, func(a *appOwner) error { return m.startAndWait(ctx, a, restartMsg{newCall()}) }), nil
	}
	return nil, fmt.Errorf("%w: verb %q (start, stop, restart)", ErrNoSuchApp, verb)
}
