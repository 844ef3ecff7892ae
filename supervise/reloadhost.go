package supervise

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/listen/steer"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
)

// reloadRun is one reload in progress of owner a, and the reload.Host its
// steps run through. The owner goroutine sets abandoned and committed; the
// reload's goroutine records the generations it started and compareDue.
type reloadRun struct {
	a        *appOwner
	ctx      context.Context // the manager's: generations outlive the reload's ctx
	cancel   context.CancelCauseFunc
	started  time.Time
	strategy strategy.Strategy
	// old is the tracked generation when the reload began.
	old generation
	// abandoned: a stop or restart cancelled the reload; its commit is refused.
	abandoned bool
	// committed is the generation the reload made tracked last (a usr2
	// rollback commits a second one), or nil.
	committed generation
	// dir is the release its new generation runs in ("": the app's
	// directory, resolved when it starts); recovery: it replaces a
	// predecessor's orphans.
	dir      string
	recovery bool
	// canary is the plan of a canary reload (see reload.Canary), off for
	// any other; canaryIn is the app's canary side (see ownerEnv.canary).
	canary   strategy.Canary
	canaryIn canarySide
	// compareDue is when the comparison its commit started ends (zero:
	// none).
	compareDue time.Time

	mu    sync.Mutex
	fresh []generation // started by the reload (being checked, or aborted)
}

// abandon cancels the reload with cause (what cancelled it); the owner
// refuses its commit from now on.
func (r *reloadRun) abandon(cause error) {
	r.abandoned = true
	r.cancel(cause)
}

// track records g, which the reload started (nil: none), and returns it
// with err.
func (r *reloadRun) track(g generation, err error) (reload.Gen, error) {
	if g == nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fresh = append(r.fresh, g)
	return g, err
}

// gens lists the old generation and every one the reload started.
func (r *reloadRun) gens() []generation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]generation{r.old}, r.fresh...)
}

// busy says which reload is in progress (ErrBusy), or nil for none.
func (a *appOwner) busy() error {
	if r := a.reload; r != nil {
		return fmt.Errorf("%w: app %s: a %s reload is in progress (started %s ago)", ErrBusy, a.cfg.Name, r.strategy, time.Since(r.started).Round(time.Millisecond))
	}
	return nil
}

// beginReload starts a reload in its own goroutine; the owner stays free to
// answer messages, and the reload's commit and end come back as messages.
// m is answered when the reload ends.
func (a *appOwner) beginReload(ctx context.Context, m reloadMsg) {
	run, err := a.planReload(ctx, m)
	if err != nil {
		m.reply <- err
		return
	}
	cctx, cancel := context.WithCancelCause(ctx)
	rctx, stop := context.WithTimeout(cctx, a.cfg.Reload.Timeout+time.Duration(len(run.canary.Steps))*run.canary.For)
	run.cancel = cancel
	a.reload = run
	logger := a.env.log()
	logged := func(msg string) {
		logger.Info("reload", "app", a.cfg.Name, "phase", msg)
		if m.progress != nil {
			m.progress(msg)
		}
	}
	go func() {
		defer cancel(nil)
		defer stop()
		err := a.runChange(rctx, run, m.release, logged)
		res := reload.ResultOf(run.strategy.String(), run.started, err)
		// The owner records the result before the caller hears of it.
		if serr := a.send(context.WithoutCancel(ctx), reloadDoneMsg{call: newCall(), run: run, result: res}); serr != nil {
			logger.Warn("reload result not recorded", "app", a.cfg.Name, "err", serr)
		}
		m.reply <- err
	}()
}

// planReload returns the run m asks for (its cancel unset), or why it
// cannot begin: another runs (ErrBusy), no generation serves
// (ErrNotRunning), or its strategy or canary is refused. The strategy is
// m's, or the app's.
func (a *appOwner) planReload(ctx context.Context, m reloadMsg) (*reloadRun, error) {
	if err := a.busy(); err != nil {
		return nil, err
	}
	if a.gen == nil || (a.state != status.Running && a.state != status.Starting) {
		return nil, fmt.Errorf("%w: app %s is %s; start it first", ErrNotRunning, a.cfg.Name, a.state)
	}
	run := &reloadRun{a: a, ctx: ctx, started: time.Now(), strategy: a.cfg.Reload.Strategy, old: a.gen, dir: m.dir, recovery: m.recovery, canary: m.canary}
	var err error
	if m.strategy != nil {
		if run.strategy, err = strategy.For(string(*m.strategy), a.cfg.Kind.String()); err != nil {
			return nil, fmt.Errorf("app %s: strategy: %w", a.cfg.Name, err)
		}
	}
	if run.canary.On() {
		if run.canaryIn, err = a.canaryRefusal(run.strategy); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// runChange runs the reload run (runReload) between the two records of
// it in the run state: before anything moves, and once it has ended. A
// deploy (release != "") points the release link at release first and
// back when the new release did not take over (see reload.Deploy); one
// that cannot be recorded does not begin: after the supervisor's death
// its successor would not know that the link points at an unchecked
// release.
func (a *appOwner) runChange(ctx context.Context, run *reloadRun, release string, progress reload.Progress) error {
	target, previous, err := reload.Targets(a.cfg.Directory, release, run.dir)
	if err != nil {
		return err
	}
	c := &recovery.RunChange{Deploy: release != "", Link: a.cfg.Directory, Target: target, Previous: previous}
	if err := a.env.recordChange(c); err != nil {
		if c.Deploy {
			return fmt.Errorf("deploy %s: recording it in run_dir: %w", release, err)
		}
		a.env.log().Warn("recovery record", "app", a.cfg.Name, "err", err)
	}
	defer func() {
		if err := a.env.recordChange(nil); err != nil {
			a.env.log().Warn("recovery record", "app", a.cfg.Name, "err", err)
		}
	}()
	steps := func() error { return a.runReload(ctx, run, progress) }
	if c.Deploy {
		return reload.Deploy(a.cfg.Directory, target, progress, steps)
	}
	return steps()
}

// runReload runs run with the strategy reload.Choose picks for it (as a
// canary when its plan is on: see runSteps) and returns the steps' error.
func (a *appOwner) runReload(ctx context.Context, run *reloadRun, progress reload.Progress) error {
	gi := run.old.Info()
	f := reload.LinkFacts(a.cfg.Directory, gi.Dir, gi.FollowsLink)
	f.Steered = a.steeredApp()
	st, why := reload.Choose(run.strategy, f)
	if why != "" {
		progress(fmt.Sprintf("%s: %s", run.old, why))
	}
	if note := f.Ungated(st); note != "" {
		progress(note)
	}
	_, err := runSteps(ctx, st, run, progress)
	if err == nil && !run.compareDue.IsZero() {
		in := max(time.Until(run.compareDue), 0).Round(time.Second)
		progress(fmt.Sprintf("comparison in %s: supctl status %s", in, a.cfg.Name))
	}
	return err
}

// steeredApp reports whether any of the app's listeners is steered (BPF or rename).
func (a *appOwner) steeredApp() bool {
	for _, l := range a.env.listeners() {
		if l.Steering != "" && l.Steering != string(steer.ModeShared) {
			return true
		}
	}
	return false
}

// standing describes run to the refusals of its commit and keep (see
// reload.Standing).
func (a *appOwner) standing(run *reloadRun) reload.Standing {
	return reload.Standing{App: a.cfg.Name, Cancelled: run != a.reload || run.abandoned || a.state == status.Stopping,
		Serving: reload.ServingOf(a.gen, run.old, run.committed), Recovery: run.recovery,
		Window: a.cfg.Reload.KeepPrevious > 0, Steered: a.steeredApp()}
}

// commit makes g, started by run, the tracked generation (Running), unless
// the run's standing refuses it (see reload.Standing.CommitRefusal).
func (a *appOwner) commit(run *reloadRun, g generation) error {
	if err := a.standing(run).CommitRefusal(); err != nil {
		return err
	}
	if err := a.takeOver(g, "switching to"); err != nil {
		return err
	}
	run.committed = g
	return nil
}

// takeOver steers the app's new connections to g and makes it the
// tracked, Running, healthy generation; the error (doing names the step)
// leaves the owner's state as it was.
func (a *appOwner) takeOver(g generation, doing string) error {
	if err := a.env.serve(g.Info().ID); err != nil {
		return fmt.Errorf("app %s: %s %s: %w", a.cfg.Name, doing, g, err)
	}
	a.env.gated(g)
	a.cancelPending()
	a.gen, a.state, a.health, a.message = g, status.Running, healthState{healthy: true}, ""
	return nil
}

// reloadDone records the end of run, then finishes a stop, runs the
// restarts that waited for it, or restarts the app if the reload ended
// without a generation.
func (a *appOwner) reloadDone(ctx context.Context, run *reloadRun, res *reload.Result) {
	if run != a.reload {
		return
	}
	a.reload = nil
	a.lastReload = res
	a.reloads[string(res.Result)]++
	a.env.events().ReloadDone(a.cfg.Name, string(res.Result), res.Duration)
	if run.recovery && a.gen == run.old && a.state == status.Starting {
		// The orphans passed the gate before; they go on serving.
		a.state, a.health = status.Running, healthState{healthy: true}
		a.message = fmt.Sprintf("recovery: no new generation took over (%s: %s); %s serves", res.Result, res.Reason, a.gen)
	}
	switch {
	case a.state == status.Stopping:
		a.finishStop(ctx)
	case len(a.restartWait) > 0:
		waiting := a.restartWait
		a.restartWait, a.message = nil, ""
		a.restartNow(ctx, waiting)
	case a.gen == nil && a.timer == nil:
		a.scheduleRestart(proc.ExitInfo{Code: -1, Time: time.Now()}, 0, "")
	}
}

func asGen(g reload.Gen) generation { return g.(generation) }

func (r *reloadRun) Spawn(ctx context.Context, dir string) (reload.Gen, error) {
	if dir == "" {
		dir = r.dir
	}
	return r.track(r.a.env.spawn(r.ctx, dir, r.a.cfg.Reload.Strategy, useOwn))
}

// Ready gates g: healthy_after passes in a row (one answer without a
// check), within start_timeout as well as the reload's own deadline, and
// rejected at once after unhealthy_after answered failures in a row. A
// rejection ends with the exception line of the last Python traceback g
// wrote, if any (see gunicorn.Traceback): why it failed, whichever way
// its master's halt was seen first (its exit or its refused probes).
func (r *reloadRun) Ready(ctx context.Context, g reload.Gen) error {
	passes := 1
	if r.a.cfg.Health.Enabled {
		passes = r.a.cfg.Health.HealthyAfter
	}
	ctx, cancel := context.WithTimeout(ctx, r.a.cfg.StartTimeout)
	defer cancel()
	err := r.a.probe.Ready(ctx, asGen(g), asGen(g).Info().ProbeAddr, passes)
	if err != nil {
		if _, exc := asGen(g).Traceback(); exc != "" {
			return fmt.Errorf("%w: %s", err, exc)
		}
	}
	return err
}

// Commit asks the owner to track g (see appOwner.commit).
func (r *reloadRun) Commit(ctx context.Context, g reload.Gen) error {
	err := r.ask(ctx, commitMsg{call: newCall(), run: r, gen: asGen(g)})
	if err == nil && r.old != nil {
		if w := r.a.env.swapped(r.old.Info().ID, asGen(g).Info().ID); w > 0 {
			r.compareDue = time.Now().Add(w)
		}
	}
	return err
}

// ask sends m, a step of the run, to the owner. Once the owner has it its
// answer is the verdict, whatever ctx does: a step it took is never
// reported (and undone) as failed. The run state is written once it took.
func (r *reloadRun) ask(ctx context.Context, m message) error {
	if err := r.a.post(ctx, m); err != nil {
		return err
	}
	err := <-m.replyTo()
	if err == nil {
		r.a.env.recordNow()
	}
	return err
}

// Drain stops g gracefully (see appOwner.stopGen, draining). For an
// exclusive strategy (restart) Drain returns only once nothing of g's tree
// runs (a singleton's child may hold its lock).
func (r *reloadRun) Drain(ctx context.Context, rg reload.Gen) error {
	g := asGen(rg)
	err := r.a.stopGen(ctx, g, true)
	if r.strategy.Exclusive() {
		r.a.env.endTree(g)
	}
	r.a.env.afterExit(g)
	return err
}

// Abort stops a generation that failed its checks: a Gunicorn master gets
// Gunicorn's graceful stop (gunicorn.Abort), a process its stop signal;
// either is KILLed after five seconds (workers still importing the app
// ignore TERM).
func (r *reloadRun) Abort(rg reload.Gen) error {
	g := asGen(rg)
	sig := r.a.stopSignal()
	if r.a.cfg.Kind == config.KindGunicorn {
		sig = syscall.SIGTERM
		stop, err := gunicorn.Abort(g.Signal, g.Workers, g.Done())
		if err != nil {
			return err
		}
		defer stop()
	}
	_, err := g.Stop(r.ctx, sig, 5*time.Second)
	r.a.env.afterExit(g)
	return err
}

// Keep asks the owner to keep old for a rollback (see keepMsg).
func (r *reloadRun) Keep(ctx context.Context, old reload.Gen) error {
	return r.ask(ctx, keepMsg{call: newCall(), run: r, gen: asGen(old)})
}

func (r *reloadRun) Dir(g reload.Gen) string { return asGen(g).Info().Dir }

// USR2 implements reload.Host through the Manager's USR2 mechanics.
func (r *reloadRun) USR2(ctx context.Context, old reload.Gen) (reload.Gen, error) {
	return r.track(r.a.env.usr2(ctx, asGen(old)))
}
