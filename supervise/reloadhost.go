package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
)

// beginReload starts a reload in its own goroutine; the owner stays free to
// answer requests and routes the reload's commit and end through requests.
func (a *appOwner) beginReload(ctx context.Context, r request) {
	if a.reloading != nil {
		r.reply <- fmt.Errorf("%w: app %s: a %s reload is in progress (started %s ago)", ErrBusy, a.cfg.Name, a.reloading.strategy, time.Since(a.reloading.started).Round(time.Millisecond))
		return
	}
	if a.gen == nil || a.stopping || !a.want || (a.state != StateRunning && a.state != StateStarting) {
		r.reply <- fmt.Errorf("%w: app %s is %s; start it first", ErrNotRunning, a.cfg.Name, a.state)
		return
	}
	strategy := a.cfg.Reload.Strategy
	if r.strategy != nil {
		strategy = *r.strategy
	}
	if strategy == config.StrategyUSR2 && a.cfg.Kind != config.KindGunicorn {
		r.reply <- fmt.Errorf("app %s: strategy usr2 needs a gunicorn app", a.cfg.Name)
		return
	}
	rctx, cancel := context.WithTimeout(ctx, a.cfg.Reload.Timeout)
	run := &reloadRun{cancel: cancel, started: time.Now(), strategy: strategy, done: make(chan struct{})}
	a.reloading = run
	a.m.changed()
	old := a.gen
	progress := r.progress
	if progress == nil {
		progress = func(string) {}
	}
	logged := func(msg string) {
		a.m.logger.Info("reload", "app", a.cfg.Name, "phase", msg)
		progress(msg)
	}
	go func() {
		defer cancel()
		h := &host{a: a, ctx: ctx}
		err := a.runReload(rctx, h, strategy, old, r.release, logged)
		outcome, reason := reload.OutcomeOf(err)
		res := &ReloadResult{Strategy: strategy.String(), Result: outcome, Reason: reason, Started: run.started, Duration: time.Since(run.started)}
		// The owner records the result before the caller hears of it.
		if serr := a.send(context.WithoutCancel(ctx), request{kind: reqReloadDone, result: res, failure: err}); serr != nil {
			a.m.logger.Warn("reload result not recorded", "app", a.cfg.Name, "err", serr)
		}
		r.reply <- err
	}()
}

// runReload points the release link (deploy), runs the strategy, and points
// the link back when the new release did not take over.
func (a *appOwner) runReload(ctx context.Context, h *host, strategy config.Strategy, old *Generation, release string, progress reload.Progress) error {
	var previous string
	if release != "" {
		abs, err := filepath.Abs(release)
		if err != nil {
			return fmt.Errorf("deploy: %w", err)
		}
		prev, err := reload.PointLink(a.cfg.Directory, abs)
		if err != nil {
			return err
		}
		previous = prev
		progress(fmt.Sprintf("pointed %s at %s (was %s)", a.cfg.Directory, abs, prev))
	}
	// A USR2 re-exec runs in the directory the old master was started in
	// unless that master follows the link (Generation.FollowsLink). One that
	// does not (started for swap, or a usr2 rollback started while the link
	// pointed at the failed release) would re-exec the old release and report
	// success: replace it by swap instead, which also starts a generation that
	// follows the link for the next usr2 reload. (Added by the reload e2e
	// tests: TestReloadStrategyOverride, TestBrokenRelease usr2/Health500.)
	if strategy == config.StrategyUSR2 && old != nil && !old.FollowsLink && a.cfg.Directory != "" {
		if now, err := resolveDir(a.cfg.Directory); err == nil && now != old.Dir {
			progress(fmt.Sprintf("%s runs in %s and was not started from %s, so a USR2 re-exec would not reach %s; using swap", old, old.Dir, a.cfg.Directory, now))
			strategy = config.StrategySwap
		}
	}
	var err error
	if strategy == config.StrategyUSR2 {
		_, err = reload.USR2(ctx, h, old, progress)
	} else {
		_, err = reload.Swap(ctx, h, old, progress)
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

// commit makes g the serving generation (reload's Commit step).
func (a *appOwner) commit(g *Generation) error {
	if a.stopping || !a.want {
		return fmt.Errorf("app %s is stopping", a.cfg.Name)
	}
	a.cancelReady()
	a.cancelTimer()
	a.gen = g
	a.state = StateRunning
	a.healthy = true
	a.healthFails = 0
	a.message = ""
	return nil
}

// reloadDone records a finished reload and restarts the app if the reload
// failed after the serving generation was lost.
func (a *appOwner) reloadDone(ctx context.Context, r request) {
	a.reloading = nil
	a.lastReload = r.result
	a.reloads[string(r.result.Result)]++
	a.m.observer.ReloadDone(a.cfg.Name, string(r.result.Result), r.result.Duration)
	a.m.changed()
	if a.stopping || !a.want {
		a.finishStop()
		return
	}
	if a.gen == nil && a.restartTimer == nil {
		a.scheduleRestart(ExitInfo{Code: -1, Time: time.Now()}, 0)
	}
}

// host implements reload.Host for one app.
type host struct {
	a   *appOwner
	ctx context.Context // the manager's: generations outlive the reload's ctx
}

func gen(g reload.Gen) *Generation { return g.(*Generation) }

func (h *host) Spawn(ctx context.Context, dir string) (reload.Gen, error) {
	id := int(h.a.m.nextGen(h.a.cfg.Name))
	g, err := h.a.m.spawn(h.ctx, h.a.cfg, id, dir, h.a.cfg.Reload.Strategy)
	if err != nil {
		return nil, err
	}
	return g, nil
}

func (h *host) Ready(ctx context.Context, rg reload.Gen) error {
	g := gen(rg)
	passes := 1
	if h.a.cfg.Health.Enabled {
		passes = h.a.cfg.Health.HealthyAfter
	}
	return h.a.pollReady(ctx, g, passes)
}

func (h *host) Commit(ctx context.Context, rg reload.Gen) error {
	return h.a.send(ctx, request{kind: reqCommit, gen: gen(rg)})
}

func (h *host) Drain(ctx context.Context, rg reload.Gen) error {
	g := gen(rg)
	_, err := g.Stop(ctx, h.a.stopSignal(), h.a.cfg.StopTimeout)
	h.a.m.afterExit(g)
	return err
}

// Abort stops a generation that failed its checks: a Gunicorn master gets
// Gunicorn's graceful stop (gunicorn.Abort), a process its stop signal;
// either is KILLed after five seconds (workers still importing the app
// ignore TERM).
func (h *host) Abort(rg reload.Gen) error {
	g := gen(rg)
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
	h.a.m.afterExit(g)
	return err
}

func (h *host) Dir(rg reload.Gen) string { return gen(rg).Dir }

func (h *host) Tail(rg reload.Gen) []string { return gen(rg).Tail() }

// USR2 sends USR2 to old's master, finds the new master through its pidfile
// ("<pidfile>.2"), and waits until it runs every worker with the app booted.
// The new master is the old one's child until the old one exits; the reaper
// adopts it then. A non-nil Gen with an error is a new master to abort.
func (h *host) USR2(ctx context.Context, rold reload.Gen) (reload.Gen, error) {
	old := gen(rold)
	newPID, err := gunicorn.USR2(ctx, gunicorn.Master{PID: old.PID, Pidfile: old.Pidfile, Gone: gone(old), Signal: old.Signal})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", old, err)
	}
	id := int(h.a.m.nextGen(h.a.cfg.Name))
	g := adoptGeneration(h.a.m.reaper, old, id, newPID)
	h.a.m.logger.Info("usr2 master", "app", h.a.cfg.Name, "generation", id, "pid", newPID, "dir", g.Dir)
	// A re-exec runs where the old master was started (Gunicorn takes $PWD
	// only if it named the same directory then): only a generation started
	// for strategy usr2 while the link pointed at its release follows the
	// link to a newly deployed one (Generation.FollowsLink). Another would
	// re-exec its own release again while the old code kept serving: refuse.
	if h.a.cfg.Directory != "" && g.Dir != "" {
		if release, err := resolveDir(h.a.cfg.Directory); err == nil && g.Dir != release {
			return g, fmt.Errorf("the new master runs in %s, not in %s (where %s points): %s was not started from the link (strategy swap, or a rollback started while the link pointed elsewhere), so its re-exec does not follow it; reload with --strategy swap",
				g.Dir, release, h.a.cfg.Directory, old)
		}
	}
	both := func() error { return errors.Join(gone(g)(), gone(old)()) }
	return g, gunicorn.AwaitBooted(ctx, g.PID, h.a.cfg.Workers, h.a.cfg.Reload.Timeout, both)
}

// gone returns a check that fails, naming the exit, once g has exited.
func gone(g *Generation) func() error {
	return func() error {
		if g.Exited() {
			return fmt.Errorf("%s exited: %s", g, g.Exit())
		}
		return nil
	}
}

// adoptGeneration wraps a USR2 master, child of old's master until that
// one exits (see gunicorn.WatchAdopted). It inherits old's output, probe
// listener, pidfile and held sockets; its process group and working
// directory are read from /proc.
func adoptGeneration(r *Reaper, old *Generation, id, pid int) *Generation {
	g := newGeneration(old.App, id, pid, gunicorn.WatchAdopted(r, pid), old.out, nil)
	g.ProbeAddr = old.ProbeAddr
	g.PGID = old.PGID
	g.Pidfile = old.Pidfile
	g.FollowsLink = old.FollowsLink
	g.outFD = old.outFD
	g.socks = old.socks
	if p, err := proc.ReadStat(pid); err == nil {
		g.PGID = p.PGRP
	}
	if dir, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err == nil {
		g.Dir = dir
	}
	return g
}
