package supervise

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/status"
)

// ErrNothingKept is returned by a rollback when the app keeps no previous
// generation to steer back to (no keep_previous, its window ended, or it
// exited): Manager.Rollback then redeploys the previous release.
var ErrNothingKept = errors.New("no previous generation kept")

// keptGen is the generation a swap replaced, kept booted and unsteered
// until until (keep_previous) for a rollback to steer back to. Its watcher
// goroutine reports its exit or the end of the window (keptEndMsg) unless
// stop is closed first (the owner let go of it).
type keptGen struct {
	gen   generation
	until time.Time
	stop  chan struct{}
}

// keepMsg asks the owner to keep gen, which run's swap replaced, instead
// of draining it; answered with nil when it is kept, or why it is not
// (errNotKept wraps the reason).
type keepMsg struct {
	call
	run *reloadRun
	gen generation
}

// keptEndMsg reports that the kept generation gen exited, or that its
// window ended (expired).
type keptEndMsg struct {
	call
	gen     generation
	expired bool
}

// rollbackMsg asks the owner to steer back to its kept generation; asked
// is when the rollback was requested. out receives what was done.
type rollbackMsg struct {
	call
	asked time.Time
	out   *RollbackDone
}

// RollbackDone is what a rollback to a kept generation did.
type RollbackDone struct {
	// To is the generation serving again, Drained the newer one now
	// drained and stopped.
	To, Drained string
	// Release is To's release directory.
	Release string
	// Flip is the time from the request to the steering update's end.
	Flip time.Duration
}

// errNotKept wraps why a swap's previous generation is drained as usual.
var errNotKept = errors.New("previous generation not kept")

// errNoWindow is errNotKept for an app without keep_previous: nothing
// worth showing.
var errNoWindow = fmt.Errorf("%w: keep_previous is 0", errNotKept)

// keepRefusal says why g, replaced by run's swap, cannot be kept now
// (errNoWindow without keep_previous), or nil.
func (a *appOwner) keepRefusal(run *reloadRun, g generation) error {
	switch {
	case a.cfg.Reload.KeepPrevious <= 0:
		return errNoWindow
	case run != a.reload || run.abandoned || a.state == status.Stopping:
		return fmt.Errorf("%w: app %s is stopping or restarting", errNotKept, a.cfg.Name)
	case run.recovery:
		return fmt.Errorf("%w: %s belongs to a previous supervisor", errNotKept, g)
	case a.gen == nil || a.gen != run.committed || g.Exited():
		return fmt.Errorf("%w: the serving generation changed during the reload", errNotKept)
	case !a.steeredApp():
		return fmt.Errorf("%w: the app's listeners are shared (steering \"shared\"), where a kept generation would go on accepting new connections", errNotKept)
	}
	return nil
}

// onKeep keeps g (see keepMsg) for keep_previous; a generation kept
// before is drained and stopped now.
func (a *appOwner) onKeep(ctx context.Context, run *reloadRun, g generation) error {
	if err := a.keepRefusal(run, g); err != nil {
		return err
	}
	a.releaseKept(ctx)
	k := &keptGen{gen: g, until: time.Now().Add(a.cfg.Reload.KeepPrevious)}
	a.watchKept(ctx, k)
	gi := g.Info()
	a.env.log().Info("keeping previous generation for rollback", "app", a.cfg.Name, "generation", gi.ID, "pid", gi.PID, "until", k.until.Format(time.RFC3339))
	return nil
}

// watchKept makes k the kept generation and starts its watcher, which
// reports its exit or the end of its window with a keptEndMsg.
func (a *appOwner) watchKept(ctx context.Context, k *keptGen) {
	k.stop = make(chan struct{})
	a.kept = k
	go func() {
		t := time.NewTimer(time.Until(k.until))
		defer t.Stop()
		m := keptEndMsg{call: newCall(), gen: k.gen}
		select {
		case <-k.stop:
			return
		case <-k.gen.Done():
		case <-t.C:
			m.expired = true
		}
		_ = a.post(context.WithoutCancel(ctx), m) // fails only once the owner ended, which ends the generation
	}()
}

// releaseKept stops keeping the kept generation, if any, and drains it.
func (a *appOwner) releaseKept(ctx context.Context) {
	k := a.kept
	if k == nil {
		return
	}
	a.kept = nil
	close(k.stop)
	a.drainRetire(ctx, k.gen)
}

// onKeptEnd forgets the kept generation g once it exited, or drains and
// stops it once its window ended.
func (a *appOwner) onKeptEnd(ctx context.Context, g generation, expired bool) {
	if a.kept == nil || a.kept.gen != g {
		return
	}
	a.kept = nil
	gi := g.Info()
	if !expired || g.Exited() {
		a.env.afterExit(g)
		a.env.log().Warn("kept generation exited", "app", a.cfg.Name, "generation", gi.ID, "pid", gi.PID, "status", g.ExitReason())
		a.finishStop(ctx)
		return
	}
	a.env.log().Info("keep_previous window ended; stopping the kept generation", "app", a.cfg.Name, "generation", gi.ID, "pid", gi.PID)
	a.drainRetire(ctx, g)
}

// drainRetire retires g (see retire) once no connection waits on its own
// steered sockets (within stop_timeout).
func (a *appOwner) drainRetire(ctx context.Context, g generation) {
	a.retiring = append(a.retiring, g)
	sig, timeout := a.stopSignal(), a.cfg.StopTimeout
	go func() {
		qctx, cancel := context.WithTimeout(ctx, timeout)
		a.env.quiesce(qctx, a.cfg.Name, g.Info().ID)
		cancel()
		if _, err := g.Stop(ctx, sig, timeout); err != nil {
			a.env.log().Error("stop", "app", a.cfg.Name, "generation", g.Info().ID, "err", err)
		}
		a.env.afterExit(g)
		_ = a.post(context.WithoutCancel(ctx), retiredMsg{call: newCall(), gen: g}) // fails only once the owner ended
	}()
}

// onRollback steers the app's new connections back to the kept generation
// (one steering update per listener) and drains the tracked one, which
// the kept one replaces. ErrNothingKept when none is kept.
func (a *appOwner) onRollback(ctx context.Context, m rollbackMsg) error {
	k := a.kept
	switch {
	case a.reload != nil:
		return fmt.Errorf("%w: app %s: a %s reload is in progress", ErrBusy, a.cfg.Name, a.reload.strategy)
	case k == nil || k.gen.Exited():
		return fmt.Errorf("app %s: %w", a.cfg.Name, ErrNothingKept)
	case a.gen == nil || a.state != status.Running:
		return fmt.Errorf("%w: app %s is %s", ErrNotRunning, a.cfg.Name, a.state)
	}
	if err := a.env.serve(a.cfg.Name, k.gen.Info().ID); err != nil {
		return fmt.Errorf("app %s: steering back to %s: %w", a.cfg.Name, k.gen, err)
	}
	flip := time.Since(m.asked)
	newer := a.gen
	a.kept = nil
	close(k.stop)
	a.cancelReady()
	a.gen = k.gen
	a.health = healthState{healthy: true}
	a.message = fmt.Sprintf("rolled back from %s", newer)
	a.env.gated(a.cfg.Name, k.gen)
	a.drainRetire(ctx, newer)
	*m.out = RollbackDone{To: k.gen.String(), Drained: newer.String(), Release: k.gen.Info().Dir, Flip: flip}
	a.env.log().Info("rolled back", "app", a.cfg.Name, "to", k.gen.String(), "from", newer.String(), "flip", flip)
	return nil
}

// keptSnapshot describes the kept generation for the snapshot (nil: none).
func (a *appOwner) keptSnapshot() *status.KeptSnapshot {
	if a.kept == nil {
		return nil
	}
	gi := a.kept.gen.Info()
	return &status.KeptSnapshot{Generation: gi.ID, PID: gi.PID, Release: gi.Dir, Until: a.kept.until}
}
