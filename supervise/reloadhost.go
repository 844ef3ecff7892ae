package supervise

import (
	"context"
	"errors"
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

// reloadRun is one reload in progress. The owner goroutine sets abandoned;
// the reload's goroutine records the generations it started.
type reloadRun struct {
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
	// any other; canaryIn is the Manager whose steering and metrics it uses.
	canary   strategy.Canary
	canaryIn *Manager

	mu    sync.Mutex
	fresh []generation // started by the reload (being checked, or aborted)
}

// abandon cancels the reload with cause (what cancelled it); the owner
// refuses its commit from now on.
func (r *reloadRun) abandon(cause error) {
	r.abandoned = true
	r.cancel(cause)
}

// add records a generation the reload started.
func (r *reloadRun) add(g generation) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.fresh = append(r.fresh, g)
}

// gens lists the old generation and every one the reload started.
func (r *reloadRun) gens() []generation {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]generation{r.old}, r.fresh...)
}

// reloadRefusal says why a reload cannot begin now, or nil.
func (a *appOwner) reloadRefusal() error {
	if r := a.reload; r != nil {
		return fmt.Errorf("%w: app %s: a %s reload is in progress (started %s ago)", ErrBusy, a.cfg.Name, r.strategy, time.Since(r.started).Round(time.Millisecond))
	}
	if a.gen == nil || (a.state != status.Running && a.state != status.Starting) {
		return fmt.Errorf("%w: app %s is %s; start it first", ErrNotRunning, a.cfg.Name, a.state)
	}
	return nil
}

// beginReload starts a reload in its own goroutine; the owner stays free to
// answer messages, and the reload's commit and end come back as messages.
// m is answered when the reload ends.
func (a *appOwner) beginReload(ctx context.Context, m reloadMsg) {
	run, err := a.planReload(m)
	if err != nil {
		m.reply <- err
		return
	}
	cctx, cancel := context.WithCancelCause(ctx)
	rctx, stop := context.WithTimeout(cctx, a.cfg.Reload.Timeout+time.Duration(len(run.canary.Steps))*run.canary.For)
	run.cancel = cancel
	a.reload = run
	a.env.changed()
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
		err := a.runChange(rctx, &host{a: a, ctx: ctx, run: run}, m.release, logged)
		res := reload.ResultOf(run.strategy.String(), run.started, err)
		// The owner records the result before the caller hears of it.
		if serr := a.send(context.WithoutCancel(ctx), reloadDoneMsg{call: newCall(), run: run, result: res}); serr != nil {
			logger.Warn("reload result not recorded", "app", a.cfg.Name, "err", serr)
		}
		m.reply <- err
	}()
}

// planReload returns the run m asks for (its cancel unset), or why it
// cannot begin: the strategy is m's, or the app's; a user's reload
// without either runs the app's configured canary.
func (a *appOwner) planReload(m reloadMsg) (*reloadRun, error) {
	if err := a.reloadRefusal(); err != nil {
		return nil, err
	}
	run := &reloadRun{started: time.Now(), strategy: a.cfg.Reload.Strategy, old: a.gen, dir: m.dir, recovery: m.recovery, canary: m.canary}
	if m.strategy != nil {
		var err error
		if run.strategy, err = strategy.For(string(*m.strategy), a.cfg.Kind.String()); err != nil {
			return nil, fmt.Errorf("app %s: strategy: %w", a.cfg.Name, err)
		}
	} else if m.byUser && !m.canary.On() {
		run.canary = a.cfg.Reload.Canary
	}
	if run.canary.On() {
		var err error
		if run.canaryIn, err = a.canaryRefusal(run.strategy); err != nil {
			return nil, err
		}
	}
	return run, nil
}

// runChange runs the reload (runReload) of h's run between the two
// records of it in the run state: before anything moves, and once it has
// ended. A deploy that cannot be recorded does not begin: after the
// supervisor's death its successor would not know that the link points at
// an unchecked release.
func (a *appOwner) runChange(ctx context.Context, h *host, release string, progress reload.Progress) error {
	target, previous, err := reload.Targets(a.cfg.Directory, release, h.run.dir)
	if err != nil {
		return err
	}
	c := &recovery.RunChange{Deploy: release != "", Link: a.cfg.Directory, Target: target, Previous: previous}
	if err := a.env.recordChange(a.cfg.Name, c); err != nil {
		if c.Deploy {
			return fmt.Errorf("deploy %s: recording it in run_dir: %w", release, err)
		}
		a.env.log().Warn("recovery record", "app", a.cfg.Name, "err", err)
	}
	defer func() {
		if err := a.env.recordChange(a.cfg.Name, nil); err != nil {
			a.env.log().Warn("recovery record", "app", a.cfg.Name, "err", err)
		}
	}()
	return a.runReload(ctx, h, c, progress)
}

// runReload points the release link (a deploy: c.Deploy), runs the strategy
// reload.Choose picks, and points the link back when the new release did
// not take over.
func (a *appOwner) runReload(ctx context.Context, h *host, c *recovery.RunChange, progress reload.Progress) error {
	var previous string
	if c.Deploy {
		prev, err := reload.PointLink(a.cfg.Directory, c.Target)
		if err != nil {
			return err
		}
		previous = prev
		progress(fmt.Sprintf("pointed %s at %s (was %s)", a.cfg.Directory, c.Target, prev))
	}
	old := h.run.old
	f := a.linkFacts(old)
	st, why := reload.Choose(h.run.strategy, f)
	if why != "" {
		progress(fmt.Sprintf("%s: %s", old, why))
	}
	if note := f.Ungated(st); note != "" {
		progress(note)
	}
	_, err := runSteps(ctx, st, h, old, progress)
	if err == nil && !h.compareDue.IsZero() {
		in := max(time.Until(h.compareDue), 0).Round(time.Second)
		progress(fmt.Sprintf("comparison in %s: supctl status %s", in, a.cfg.Name))
	}
	if err != nil && previous != "" {
		if _, perr := reload.PointLink(a.cfg.Directory, previous); perr != nil {
			progress(fmt.Sprintf("error: pointing %s back at %s: %v", a.cfg.Directory, previous, perr))
			return errors.Join(err, perr)
		}
		progress(fmt.Sprintf("pointed %s back at %s", a.cfg.Directory, previous))
	}
	return err
}

// steeredApp reports whether any of the app's listeners is steered (BPF or rename).
func (a *appOwner) steeredApp() bool {
	for _, l := range a.env.listeners(a.cfg.Name) {
		if l.Steering != "" && l.Steering != string(steer.ModeShared) {
			return true
		}
	}
	return false
}

// linkFacts describes the app's release link, its listeners and its
// generation g for reload.Choose.
func (a *appOwner) linkFacts(g generation) reload.Facts {
	gi := g.Info()
	f := linkFacts(a.cfg, gi.Dir, gi.FollowsLink)
	f.Steered = a.steeredApp()
	return f
}

// linkFacts is reload.LinkFacts of app's release link.
func linkFacts(app *config.App, runsIn string, follows bool) reload.Facts {
	return reload.LinkFacts(app.Directory, runsIn, follows)
}

// standing describes run to the refusals of its commit and keep (see
// reload.Standing).
func (a *appOwner) standing(run *reloadRun) reload.Standing {
	s := reload.Standing{App: a.cfg.Name, Cancelled: run != a.reload || run.abandoned || a.state == status.Stopping,
		Recovery: run.recovery, Window: a.cfg.Reload.KeepPrevious > 0, Steered: a.steeredApp()}
	switch a.gen {
	case nil:
		s.Serving = reload.ServingNone
	case run.committed:
		s.Serving = reload.ServingNew
	case run.old:
		s.Serving = reload.ServingOld
	}
	return s
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
	if err := a.env.serve(a.cfg.Name, g.Info().ID); err != nil {
		return fmt.Errorf("app %s: %s %s: %w", a.cfg.Name, doing, g, err)
	}
	a.env.gated(a.cfg.Name, g)
	a.cancelReady()
	a.cancelTimer()
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
	a.env.changed()
	if run.recovery && a.gen == run.old && a.state == status.Starting {
		// The orphans passed the gate before; they go on serving.
		a.state = status.Running
		a.health = healthState{healthy: true}
		a.message = fmt.Sprintf("recovery: no new generation took over (%s: %s); %s serves", res.Result, res.Reason, a.gen)
	}
	switch {
	case a.state == status.Stopping:
		a.finishStop(ctx)
	case len(a.restartWait) > 0:
		waiting := a.restartWait
		a.restartWait = nil
		a.message = ""
		a.restartNow(ctx, waiting)
	case a.gen == nil && a.timer == nil:
		a.scheduleRestart(proc.ExitInfo{Code: -1, Time: time.Now()}, 0, "")
	}
}

// host implements reload.Host for one app's reload run.
type host struct {
	a   *appOwner
	ctx context.Context // the manager's: generations outlive the reload's ctx
	run *reloadRun
	// compareDue is when the comparison its commit started ends (zero:
	// none).
	compareDue time.Time
}

func asGen(g reload.Gen) generation { return g.(generation) }

func (h *host) Spawn(ctx context.Context, dir string) (reload.Gen, error) {
	cfg := h.a.cfg
	if dir == "" {
		dir = h.run.dir
	}
	id := int(h.a.env.nextGen(cfg.Name))
	g, err := h.a.env.spawnGen(h.ctx, cfg, id, dir, cfg.Reload.Strategy, useOwn)
	if err != nil {
		return nil, err
	}
	h.run.add(g)
	return g, nil
}

// Ready gates g: healthy_after passes in a row (one answer without a
// check), within start_timeout as well as the reload's own deadline, and
// rejected at once after unhealthy_after answered failures in a row.
func (h *host) Ready(ctx context.Context, g reload.Gen) error {
	passes := 1
	if h.a.cfg.Health.Enabled {
		passes = h.a.cfg.Health.HealthyAfter
	}
	ctx, cancel := context.WithTimeout(ctx, h.a.cfg.StartTimeout)
	defer cancel()
	return h.a.probe.ready(ctx, asGen(g), passes)
}

// Commit asks the owner to track g. Once the owner has the message its
// answer is the verdict, whatever ctx does meanwhile: a commit it accepted
// must never be reported (and undone) as failed.
func (h *host) Commit(ctx context.Context, g reload.Gen) error {
	m := commitMsg{call: newCall(), run: h.run, gen: asGen(g)}
	if err := h.a.post(ctx, m); err != nil {
		return err
	}
	err := <-m.reply
	if err == nil {
		h.a.env.recordNow(h.a.cfg.Name) // a successor recovers to g's release
		if h.run.old != nil {
			if w := h.a.env.swapped(h.a.cfg.Name, h.run.old.Info().ID, asGen(g).Info().ID); w > 0 {
				h.compareDue = time.Now().Add(w)
			}
		}
	}
	return err
}

// Drain stops g gracefully (see appOwner.stopGen, draining). For an
// exclusive strategy (restart) Drain returns only once nothing of g's tree
// runs (a singleton's child may hold its lock).
func (h *host) Drain(ctx context.Context, rg reload.Gen) error {
	g := asGen(rg)
	err := h.a.stopGen(ctx, g, true)
	if h.run.strategy.Exclusive() {
		h.a.env.endTree(g)
	}
	h.a.env.afterExit(g)
	return err
}

// Abort stops a generation that failed its checks: a Gunicorn master gets
// Gunicorn's graceful stop (gunicorn.Abort), a process its stop signal;
// either is KILLed after five seconds (workers still importing the app
// ignore TERM).
func (h *host) Abort(rg reload.Gen) error {
	g := asGen(rg)
	sig := h.a.stopSignal()
	if h.a.cfg.Kind == config.KindGunicorn {
		sig = syscall.SIGTERM
		stop, err := gunicorn.Abort(g.Signal, g.Workers, g.Done())
		if err != nil {
			return err
		}
		defer stop()
	}
	_, err := g.Stop(h.ctx, sig, 5*time.Second)
	h.a.env.afterExit(g)
	return err
}

// Keep asks the owner to keep old for a rollback (see keepMsg).
func (h *host) Keep(ctx context.Context, old reload.Gen) error {
	err := h.a.send(ctx, keepMsg{call: newCall(), run: h.run, gen: asGen(old)})
	if err == nil {
		h.a.env.recordNow(h.a.cfg.Name)
	}
	return err
}

func (h *host) Dir(g reload.Gen) string { return asGen(g).Info().Dir }

// USR2 implements reload.Host through the Manager's USR2 mechanics.
func (h *host) USR2(ctx context.Context, old reload.Gen) (reload.Gen, error) {
	g, err := h.a.env.usr2(ctx, h.a, asGen(old))
	if g == nil {
		return nil, err
	}
	h.run.add(g)
	return g, err
}
