package supervise

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/status"
)

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

// onKeep keeps g (see keepMsg) for keep_previous unless the run's
// standing refuses it (see reload.Standing.KeepRefusal); a generation kept
// before is drained and stopped now.
func (a *appOwner) onKeep(ctx context.Context, run *reloadRun, g generation) error {
	if err := a.standing(run).KeepRefusal(g.String(), g.Exited()); err != nil {
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

// dropKept stops keeping the kept generation and returns it (nil: none).
func (a *appOwner) dropKept() generation {
	k := a.kept
	if k == nil {
		return nil
	}
	a.kept = nil
	close(k.stop)
	return k.gen
}

// releaseKept stops keeping the kept generation, if any, and drains it.
func (a *appOwner) releaseKept(ctx context.Context) {
	if g := a.dropKept(); g != nil {
		a.retire(ctx, g, true, nil)
	}
}

// onKeptEnd forgets the kept generation g once it exited, or drains and
// stops it once its window ended.
func (a *appOwner) onKeptEnd(ctx context.Context, g generation, expired bool) {
	if a.kept == nil || a.kept.gen != g {
		return
	}
	a.dropKept()
	gi := g.Info()
	if !expired || g.Exited() {
		a.env.afterExit(g)
		a.env.log().Warn("kept generation exited", "app", a.cfg.Name, "generation", gi.ID, "pid", gi.PID, "status", g.ExitReason())
		a.finishStop(ctx)
		return
	}
	a.env.log().Info("keep_previous window ended; stopping the kept generation", "app", a.cfg.Name, "generation", gi.ID, "pid", gi.PID)
	a.retire(ctx, g, true, nil)
}

// onRollback steers the app's new connections back to the kept generation
// (one steering update per listener) and drains the tracked one, which
// the kept one replaces. reload.ErrNothingKept when none is kept.
func (a *appOwner) onRollback(ctx context.Context, m rollbackMsg) error {
	k := a.kept
	switch err := a.busy(); {
	case err != nil:
		return err
	case k == nil || k.gen.Exited():
		return fmt.Errorf("app %s: %w", a.cfg.Name, reload.ErrNothingKept)
	case a.gen == nil || a.state != status.Running:
		return fmt.Errorf("%w: app %s is %s", ErrNotRunning, a.cfg.Name, a.state)
	}
	newer := a.gen
	if err := a.takeOver(k.gen, "steering back to"); err != nil {
		return err
	}
	flip := time.Since(m.asked)
	a.dropKept()
	a.message = fmt.Sprintf("rolled back from %s", newer)
	a.retire(ctx, newer, true, nil)
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

// Rollback puts app name's previous release back in service. While a
// swap's previous generation is kept (keep_previous), the app's new
// connections are steered back to it (one steering update per listener),
// the newer generation is drained and stopped in the background, and the
// app's directory link (if any) points at the kept generation's release
// again. Otherwise the newest remembered release other than the serving
// one (see recovery.AppRun.Releases) is deployed as Deploy does: gated,
// the link pointed back on failure. The errors are Deploy's, ErrBusy or
// ErrNotRunning, or one saying that no previous release is remembered.
func (m *Manager) Rollback(ctx context.Context, name string, progress reload.Progress) error {
	a, err := m.owner(name)
	if err != nil {
		return err
	}
	if progress == nil {
		progress = func(string) {}
	}
	var done RollbackDone
	err = a.send(ctx, rollbackMsg{call: newCall(), asked: time.Now(), out: &done})
	switch {
	case err == nil:
		progress(fmt.Sprintf("steered new connections back to %s in %.2f ms", done.To, float64(done.Flip.Microseconds())/1000))
		m.pointLinkBack(a, done.Release, progress)
		progress(fmt.Sprintf("draining %s", done.Drained))
		return nil
	case !errors.Is(err, reload.ErrNothingKept):
		return err
	}
	current := a.snap.Load().Release
	prev := m.slot(name).facts.Previous(current)
	if prev == "" {
		return fmt.Errorf("app %s: rollback: %w, and no release before %s is remembered", name, reload.ErrNothingKept, current)
	}
	progress(fmt.Sprintf("%s; deploying the previous release %s", reload.ErrNothingKept, prev))
	return m.Deploy(ctx, name, prev, nil, progress)
}

// pointLinkBack points app a's directory link at release, the one its
// serving generation runs in after a rollback, when the link points
// elsewhere (see reload.PointBack); a failure is reported, not returned:
// the rollback itself is done.
func (m *Manager) pointLinkBack(a *appOwner, release string, progress reload.Progress) {
	link := a.cfg.Directory
	prev, moved, err := reload.PointBack(link, release)
	switch {
	case err != nil:
		progress(fmt.Sprintf("warning: pointing %s back at %s: %v", link, release, err))
		m.logger.Warn("rollback: pointing the release link back", "app", a.cfg.Name, "err", err)
	case moved:
		progress(fmt.Sprintf("pointed %s at %s (was %s)", link, release, prev))
		m.recordNow(a.cfg.Name)
	}
}
