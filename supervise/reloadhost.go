package supervise

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
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
	// canary is the plan of a canary reload (see reload.Canary), env its
	// environment; off for any other.
	canary       strategy.Canary
	canaryEnv    canaryEnv
	canaryLimits config.CanaryLimits

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
	if err := a.reloadRefusal(); err != nil {
		m.reply <- err
		return
	}
	st := a.cfg.Reload.Strategy
	if m.strategy != nil {
		var err error
		if st, err = strategy.For(string(*m.strategy), a.cfg.Kind.String()); err != nil {
			m.reply <- fmt.Errorf("app %s: strategy: %w", a.cfg.Name, err)
			return
		}
	}
	if m.byUser && !m.canary.On() && m.strategy == nil {
		m.canary = a.cfg.Reload.Canary
	}
	var cenv canaryEnv
	if m.canary.On() {
		var err error
		if cenv, err = a.canaryRefusal(st); err != nil {
			m.reply <- err
			return
		}
	}
	cctx, cancel := context.WithCancelCause(ctx)
	rctx, stop := context.WithTimeout(cctx, a.cfg.Reload.Timeout+time.Duration(len(m.canary.Steps))*m.canary.For)
	run := &reloadRun{cancel: cancel, started: time.Now(), strategy: st, old: a.gen, dir: m.dir, recovery: m.recovery,
		canary: m.canary, canaryEnv: cenv, canaryLimits: a.cfg.Reload.CanaryLimits}
	a.reload = run
	a.env.changed()
	progress := m.progress
	if progress == nil {
		progress = func(string) {}
	}
	logger := a.env.log()
	logged := func(msg string) {
		logger.Info("reload", "app", a.cfg.Name, "phase", msg)
		progress(msg)
	}
	go func() {
		defer cancel(nil)
		defer stop()
		h := &host{a: a, ctx: ctx, run: run}
		err := a.runChange(rctx, h, st, m.release, logged)
		res := reloadResult(run, err)
		// The owner records the result before the caller hears of it.
		if serr := a.send(context.WithoutCancel(ctx), reloadDoneMsg{call: newCall(), run: run, result: res}); serr != nil {
			logger.Warn("reload result not recorded", "app", a.cfg.Name, "err", serr)
		}
		m.reply <- err
	}()
}

// reloadResult describes how run ended with err.
func reloadResult(run *reloadRun, err error) *reload.Result {
	outcome, reason := reload.OutcomeOf(err)
	return &reload.Result{Strategy: run.strategy.String(), Result: outcome, Reason: reason, Started: run.started, Duration: time.Since(run.started)}
}

// runChange runs the reload (runReload) of h's run between the two
// records of it in the run state: before anything moves, and once it has
// ended. A deploy that cannot be recorded does not begin: after the
// supervisor's death its successor would not know that the link points at
// an unchecked release.
func (a *appOwner) runChange(ctx context.Context, h *host, st strategy.Strategy, release string, progress reload.Progress) error {
	c, err := a.change(release, h.run.dir)
	if err != nil {
		return err
	}
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
	return a.runReload(ctx, h, st, h.run.old, c, progress)
}

// change describes the deploy of release ("": a reload of dir, or of the
// app's directory as it resolves now) for the run state.
func (a *appOwner) change(release, dir string) (*recovery.RunChange, error) {
	c := &recovery.RunChange{Deploy: release != "", Link: a.cfg.Directory, Target: dir}
	if release == "" {
		if dir == "" && a.cfg.Directory != "" {
			c.Target, _ = reload.ResolveDir(a.cfg.Directory) // "" when it does not resolve: the spawn says why
		}
		return c, nil
	}
	abs, err := filepath.Abs(release)
	if err != nil {
		return nil, fmt.Errorf("deploy %s: %w", release, err)
	}
	c.Target = abs
	if c.Previous, err = reload.ReadLink(a.cfg.Directory); err != nil {
		return nil, err
	}
	return c, nil
}

// runReload points the release link (a deploy: c.Deploy), runs the strategy
// reload.Choose picks, and points the link back when the new release did
// not take over.
func (a *appOwner) runReload(ctx context.Context, h *host, st strategy.Strategy, old generation, c *recovery.RunChange, progress reload.Progress) error {
	var previous string
	if c.Deploy {
		abs := c.Target
		prev, err := reload.PointLink(a.cfg.Directory, abs)
		if err != nil {
			return err
		}
		previous = prev
		progress(fmt.Sprintf("pointed %s at %s (was %s)", a.cfg.Directory, abs, prev))
	}
	st, why := reload.Choose(st, a.linkFacts(old.Info()))
	if why != "" {
		progress(fmt.Sprintf("%s: %s", old, why))
	}
	if st.ReExec() && a.steeredApp() {
		progress(reExecUngated(st))
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

// reExecUngated is the progress line of an in-place re-exec reload (usr2) of
// an app with steered listeners: what its gate does and does not protect.
func reExecUngated(s strategy.Strategy) string {
	return fmt.Sprintf("%s: the new master inherits the serving sockets, so its workers take connections as soon as they boot; "+
		"the gate decides only whether the old master is drained or the new one stopped (use %s to keep traffic from an unchecked generation)", s, s.Fallback())
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

// linkFacts describes the app's release link and a generation for reload.Choose.
func (a *appOwner) linkFacts(g gen.Info) reload.Facts {
	return linkFacts(a.cfg, g.Dir, g.FollowsLink)
}

// linkFacts describes app's release link and a generation running in runsIn;
// a link that does not resolve now counts as none.
func linkFacts(app *config.App, runsIn string, follows bool) reload.Facts {
	f := reload.Facts{RunsIn: runsIn, FollowsLink: follows}
	if app.Directory == "" {
		return f
	}
	if target, err := reload.ResolveDir(app.Directory); err == nil {
		f.Link, f.LinkTarget = app.Directory, target
	}
	return f
}

// commit makes g, started by run, the tracked generation (Running). It is
// refused when run was abandoned (stop, restart) or the tracked generation
// is neither the one run replaces nor one run committed before: a
// generation is never replaced without its reload stopping it.
func (a *appOwner) commit(run *reloadRun, g generation) error {
	switch {
	case run != a.reload || run.abandoned || a.state == status.Stopping:
		return fmt.Errorf("app %s: reload cancelled by a stop or restart", a.cfg.Name)
	case a.gen != nil && a.gen != run.old && a.gen != run.committed:
		return fmt.Errorf("app %s: the serving generation changed during the reload", a.cfg.Name)
	}
	if err := a.env.serve(a.cfg.Name, g.Info().ID); err != nil {
		return fmt.Errorf("app %s: switching to %s: %w", a.cfg.Name, g, err)
	}
	run.committed = g
	a.env.gated(a.cfg.Name, g)
	a.cancelReady()
	a.cancelTimer()
	a.gen = g
	a.state = status.Running
	a.health = healthState{healthy: true}
	a.message = ""
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

// Drain stops g gracefully. A generation with steered sockets first keeps
// accepting until no connection waits on them (within stop_timeout). For an
// exclusive strategy (restart) Drain returns only once nothing of g's tree
// runs (a singleton's child may hold its lock).
func (h *host) Drain(ctx context.Context, rg reload.Gen) error {
	g := asGen(rg)
	qctx, cancel := context.WithTimeout(ctx, h.a.cfg.StopTimeout)
	h.a.env.quiesce(qctx, h.a.cfg.Name, g.Info().ID)
	cancel()
	_, err := g.Stop(ctx, h.a.stopSignal(), h.a.cfg.StopTimeout)
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
func (h *host) Keep(ctx context.Context, old reload.Gen) (bool, string) {
	err := h.a.send(ctx, keepMsg{call: newCall(), run: h.run, gen: asGen(old)})
	switch {
	case err == nil:
		h.a.env.recordNow(h.a.cfg.Name)
		return true, ""
	case errors.Is(err, errNoWindow):
		return false, ""
	}
	return false, err.Error()
}

func (h *host) Dir(g reload.Gen) string { return asGen(g).Info().Dir }

func (h *host) Tail(g reload.Gen) []string { return asGen(g).Tail() }

// USR2 implements reload.Host through the Manager's USR2 mechanics.
func (h *host) USR2(ctx context.Context, old reload.Gen) (reload.Gen, error) {
	g, err := h.a.env.usr2(ctx, h.a, asGen(old))
	if g == nil {
		return nil, err
	}
	h.run.add(g)
	return g, err
}
