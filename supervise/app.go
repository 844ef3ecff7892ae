package supervise

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/health"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/status"
)

// ErrBusy is returned when a reload is asked for while one runs.
var ErrBusy = errors.New("busy")

// ErrNotRunning is returned by a reload of an app that is not running.
var ErrNotRunning = errors.New("not running")

// appOwner is the one goroutine that owns an app's state. Everything else
// sends it messages (messages.go) carrying their own reply channel, and reads
// the snapshot it publishes after every event.
//
// The state is one State, with these transitions:
//
//	Stopped        start, restart        -> Starting (Backoff if the spawn failed)
//	Starting       ready                 -> Running (alive but not answering: Running, unhealthy)
//	Starting/Running  exit              -> Backoff, Failed (crash loop) or Stopped (restart policy)
//	Backoff/Failed timer, start, restart -> Starting;  stop -> Stopped
//	Starting/Running  stop              -> Stopping -> Stopped once all exited
//	Stopping       start, restart        -> stays Stopping, then Starting once all exited
//	Starting/Running  restart           -> Starting: the old generation is retired
//	                                       (stopped in the background, answered on its exit)
//
// A reload runs beside Starting/Running (a.reload != nil); it is refused
// while one runs (ErrBusy) and in any other state (ErrNotRunning). Its
// commit makes its new generation the tracked one (Running). When the
// tracked generation exits during a reload the state is Starting without a
// generation: the reload's new one takes over, or a restart is scheduled
// when the reload ends without one. A stop cancels the reload and waits for
// it. A restart during a reload cancels the reload, waits for its end (the
// reload stops the generation it started, or finishes draining the old one
// if it had already committed), then restarts whatever is tracked: a
// restart always ends with exactly one new generation.
//
// Invariant: every generation the owner started is the tracked one (a.gen),
// a reload's new or old one (a.reload), or retiring and being stopped.
type appOwner struct {
	cfg    *config.App
	env    ownerEnv
	probe  prober
	msgs   chan message
	snap   atomic.Pointer[status.AppSnapshot]
	exited chan struct{} // closed when run returns

	// Fields below are touched only by the owner goroutine.
	ownerState
	// thenStart: in Stopping, start again once everything exited.
	thenStart bool
	// reload is the reload in progress, or nil.
	reload *reloadRun
	// restartWait holds restarts waiting for the reload to end.
	restartWait []chan error
	// retiring are generations being stopped that are no longer tracked.
	retiring    []generation
	policy      config.Restarts
	timer       *time.Timer // set exactly in Backoff and Failed
	nextRestart time.Time
	readyCancel context.CancelFunc
	stopWaiters []chan error
	// refuse: a stop by request is in progress; once it ends the app's
	// listeners close (see finishStop).
	refuse bool
	// startWaiters wait for the outcome of the start in progress (see
	// awaitStartMsg).
	startWaiters []chan error
	// exitedGen is the tracked generation that exited last (its output
	// tail explains a failed start).
	exitedGen generation
	// broken is why the app's configuration is invalid ("": valid); set
	// before run by Manager.setAside: no generation is started.
	broken string
}

// ownerState is the part of an owner's state that passes to the owner
// replacing it (see appOwner.handoff and appOwner.adopt).
type ownerState struct {
	state status.State
	// gen is the tracked generation: set in Starting and Running (except
	// after an exit during a reload) and in Stopping until it exits.
	gen      generation
	health   healthState
	restarts int
	// attempted: startGen ran at least once, or a generation was handed over.
	attempted  bool
	lastExit   *proc.ExitInfo
	lastReload *reload.Result
	reloads    map[string]int
	message    string
	// kept is the generation a swap replaced, kept for a rollback (nil: none).
	kept *keptGen
}

// healthState is the periodic health check of the tracked generation.
type healthState struct {
	busy    bool // a check runs
	healthy bool
	fails   int // consecutive failed checks
}

func newAppOwner(m *Manager, cfg *config.App) *appOwner {
	m.mu.Lock()
	s := m.slotFor(cfg.Name)
	m.mu.Unlock()
	p := &health.Prober{Cfg: cfg, Checker: health.New(cfg.Health, gen.Command{Spawner: m.spawner, App: cfg}.Run), Observer: m.observer}
	return newOwner(managerEnv{m: m, s: s, cfg: cfg}, p, cfg)
}

// newOwner makes an owner in state Stopped; run starts its goroutine.
func newOwner(env ownerEnv, p prober, cfg *config.App) *appOwner {
	a := &appOwner{
		cfg:        cfg,
		env:        env,
		probe:      p,
		msgs:       make(chan message),
		ownerState: ownerState{reloads: map[string]int{}},
		exited:     make(chan struct{}),
	}
	a.publish()
	return a
}

// send delivers m to the owner and waits for its reply, or for ctx.
func (a *appOwner) send(ctx context.Context, m message) error {
	if err := a.post(ctx, m); err != nil {
		return err
	}
	select {
	case err := <-m.replyTo():
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// post delivers m to the owner without waiting for the reply.
func (a *appOwner) post(ctx context.Context, m message) error {
	select {
	case a.msgs <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-a.exited:
		return fmt.Errorf("app %s: supervisor is shutting down", a.cfg.Name)
	}
}

func (a *appOwner) run(ctx context.Context) {
	defer close(a.exited)
	defer a.startWorkerCtl(ctx)()
	var healthTick <-chan time.Time
	if a.cfg.Health.Enabled {
		t := time.NewTicker(a.cfg.Health.Interval)
		defer t.Stop()
		healthTick = t.C
	}
	for {
		var genDone <-chan struct{}
		if a.gen != nil {
			genDone = a.gen.Done()
		}
		var timerC <-chan time.Time
		if a.timer != nil {
			timerC = a.timer.C
		}
		select {
		case m := <-a.msgs:
			if h, ok := m.(handoffMsg); ok {
				if a.handoff(h) {
					return // the generation runs on, under the next owner
				}
			} else {
				a.handle(ctx, m)
			}
		case <-genDone:
			a.onExit(ctx, a.gen)
		case <-timerC:
			a.timer = nil
			a.startGen(ctx)
		case <-healthTick:
			a.healthCheck(ctx)
		case <-ctx.Done():
			// The manager stops apps before cancelling; this is the last resort.
			for _, g := range a.known() {
				g.Kill()
			}
			return
		}
		a.publish()
	}
}

// handle dispatches one message.
func (a *appOwner) handle(ctx context.Context, m message) {
	var err error
	switch m := m.(type) {
	case startMsg:
		a.onStart(ctx)
	case stopMsg:
		a.refuse = a.refuse || m.refuse
		a.onStop(ctx, m.reply)
		return
	case restartMsg:
		a.onRestart(ctx, m.reply)
		return
	case awaitStartMsg:
		a.onAwaitStart(m.reply)
		return
	case signalMsg:
		a.onSignal(m)
		return
	case reloadMsg:
		a.beginReload(ctx, m)
		return
	case commitMsg:
		err = a.commit(m.run, m.gen)
	case keepMsg:
		err = a.onKeep(ctx, m.run, m.gen)
	case keptEndMsg:
		a.onKeptEnd(ctx, m.gen, m.expired)
	case rollbackMsg:
		err = a.onRollback(ctx, m)
	case reloadDoneMsg:
		a.reloadDone(ctx, m.run, m.result)
	case healthResultMsg:
		a.onHealth(ctx, m.gen, m.err)
	case readyMsg:
		a.onReady(m.gen, m.err)
	case retiredMsg:
		a.onRetired(ctx, m.gen)
	case freezeMsg:
		a.freeze(m)
		return
	case accountMsg:
		*m.out = a.known()
	case pingMsg:
	default:
		err = fmt.Errorf("app %s: unknown message %T", a.cfg.Name, m)
	}
	a.publish() // the caller reads the snapshot of what it asked for
	m.replyTo() <- err
}

// answer answers each of replies (buffered) with err.
func answer(replies []chan error, err error) {
	for _, r := range replies {
		r <- err
	}
}

// known lists every generation the owner started that may still run.
func (a *appOwner) known() []generation {
	all := append([]generation{a.gen}, a.retiring...)
	if a.reload != nil {
		all = append(all, a.reload.gens()...)
	}
	if a.kept != nil {
		all = append(all, a.kept.gen)
	}
	var out []generation
	for _, g := range all {
		if g != nil && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

func (a *appOwner) stopSignal() syscall.Signal {
	if s, ok := a.cfg.StopSignal.(syscall.Signal); ok {
		return s
	}
	return syscall.SIGTERM
}

// cancelPending cancels the scheduled restart and the readiness wait.
func (a *appOwner) cancelPending() {
	a.cancelTimer()
	a.cancelReady()
}

func (a *appOwner) cancelTimer() {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.nextRestart = time.Time{}
}

func (a *appOwner) cancelReady() {
	if a.readyCancel != nil {
		a.readyCancel()
		a.readyCancel = nil
	}
}

// onStart: Stopped, Backoff or Failed start at once (the restart policy
// forgets past exits); Stopping starts again once stopped; otherwise nothing.
func (a *appOwner) onStart(ctx context.Context) {
	switch a.state {
	case status.Stopping:
		a.thenStart = true
	case status.Stopped, status.Backoff, status.Failed:
		a.cancelTimer()
		a.policy.Reset()
		a.startGen(ctx)
	}
}

// onStop: see the transitions on appOwner. reply is answered once nothing
// the owner started runs.
func (a *appOwner) onStop(ctx context.Context, reply chan error) {
	a.thenStart = false
	a.cancelPending()
	a.answerStart(&StartError{App: a.cfg.Name, Reason: "stopped before its start settled"})
	a.stopWaiters = append(a.stopWaiters, reply)
	answer(a.restartWait, fmt.Errorf("app %s: stopped before the restart could run", a.cfg.Name))
	a.restartWait = nil
	if a.reload != nil {
		a.reload.abandon(fmt.Errorf("reload cancelled: app %s is stopping", a.cfg.Name))
	}
	a.releaseKept(ctx)
	if a.state != status.Stopping && a.gen != nil {
		g := a.gen
		go func() {
			// run() sees the exit through g.Done(); an error here means
			// the process survived KILL.
			if err := a.stopGen(ctx, g, false); err != nil {
				a.env.log().Error("stop", "app", a.cfg.Name, "err", err)
			}
		}()
	}
	a.state = status.Stopping
	a.finishStop(ctx)
}

// finishStop ends Stopping once nothing the owner started runs: it answers
// the stop waiters and goes to Stopped, or starts again (thenStart).
func (a *appOwner) finishStop(ctx context.Context) {
	if a.state != status.Stopping || a.gen != nil || a.reload != nil || len(a.retiring) > 0 {
		return
	}
	// Before any later start: a start handled after this one spawns into
	// an app (and cgroup) nothing is being killed in.
	a.env.endStrays()
	if a.refuse && !a.thenStart {
		a.env.refuse()
	}
	a.refuse, a.state, a.message = false, status.Stopped, ""
	a.publish() // a stop's caller reads the snapshot it waited for
	answer(a.stopWaiters, nil)
	a.stopWaiters = nil
	if a.thenStart {
		a.thenStart = false
		a.policy.Reset()
		a.startGen(ctx)
	}
}

// onRestart: see the transitions on appOwner.
func (a *appOwner) onRestart(ctx context.Context, reply chan error) {
	switch {
	case a.broken != "":
		reply <- fmt.Errorf("app %s: %s: fix the configuration, then supctl update", a.cfg.Name, a.broken)
	case a.state == status.Stopping:
		a.thenStart = true
		reply <- nil
	case a.reload != nil:
		a.reload.abandon(fmt.Errorf("reload cancelled: app %s is restarting", a.cfg.Name))
		a.restartWait = append(a.restartWait, reply)
		a.message = "restart waits for the reload to end"
	default:
		a.restartNow(ctx, []chan error{reply})
	}
}

// restartNow retires the tracked generation (if any) and starts a new one;
// replies are answered once the retired generation exited.
func (a *appOwner) restartNow(ctx context.Context, replies []chan error) {
	a.cancelTimer()
	a.policy.Reset()
	if old := a.gen; old != nil {
		a.gen = nil
		a.cancelReady()
		a.retire(ctx, old, false, replies)
		// Whatever old detached never runs beside the new generation.
		a.env.endDetached(old)
	} else {
		answer(replies, nil)
	}
	a.startGen(ctx)
}

// retire stops g, no longer tracked, in the background (see stopGen);
// replies get the stop's error once g exited, which is logged when no one
// waits for it.
func (a *appOwner) retire(ctx context.Context, g generation, drain bool, replies []chan error) {
	a.retiring = append(a.retiring, g)
	go func() {
		err := a.stopGen(ctx, g, drain)
		a.env.afterExit(g)
		if err != nil && len(replies) == 0 {
			a.env.log().Error("stop", "app", a.cfg.Name, "generation", g.Info().ID, "err", err)
		}
		answer(replies, err)
		_ = a.post(context.WithoutCancel(ctx), retiredMsg{call: newCall(), gen: g}) // fails only once the owner ended
	}()
}

// stopGen stops g gracefully: its stop signal, then KILL after
// stop_timeout. With drain, a generation with steered sockets first keeps
// accepting until no connection waits on them (within stop_timeout).
func (a *appOwner) stopGen(ctx context.Context, g generation, drain bool) error {
	if drain {
		qctx, cancel := context.WithTimeout(ctx, a.cfg.StopTimeout)
		a.env.quiesce(qctx, g.Info().ID)
		cancel()
	}
	_, err := g.Stop(ctx, a.stopSignal(), a.cfg.StopTimeout)
	return err
}

// onRetired forgets a retired generation that exited; a stop waiting for
// it may finish now.
func (a *appOwner) onRetired(ctx context.Context, g generation) {
	if i := slices.Index(a.retiring, g); i >= 0 {
		a.retiring = slices.Delete(a.retiring, i, i+1)
	}
	a.finishStop(ctx)
}

// startGen spawns a generation (Starting) and waits for readiness in the
// background; a failed spawn counts as a crash (Backoff or Failed).
func (a *appOwner) startGen(ctx context.Context) {
	a.attempted = true
	if a.broken != "" {
		a.failBroken("")
		return
	}
	var g generation
	err := a.env.relisten()
	if err == nil {
		g, err = a.env.spawn(ctx, "", a.cfg.Reload.Strategy, useServing)
	}
	if err != nil {
		a.env.log().Error("start failed", "app", a.cfg.Name, "err", err)
		a.scheduleRestart(proc.ExitInfo{Code: -1, Time: time.Now()}, 0, err.Error())
		return
	}
	if err := a.env.serve(g.Info().ID); err != nil {
		a.env.log().Error("steering connections to the new generation", "app", a.cfg.Name, "err", err)
	}
	a.gen, a.state, a.message, a.health = g, status.Starting, "", healthState{}
	a.awaitReady(ctx, g)
}

// awaitReady waits for g's readiness in the background and reports it
// with a readyMsg; cancelReady abandons the wait.
func (a *appOwner) awaitReady(ctx context.Context, g generation) {
	rctx, cancel := context.WithCancel(ctx)
	a.readyCancel = cancel
	go func() {
		err := a.probe.Started(rctx, g, g.Info().ProbeAddr)
		_ = a.post(rctx, readyMsg{call: newCall(), gen: g, err: err}) // fails only when the wait was cancelled
	}()
}

// onReady ends Starting for the tracked generation g.
func (a *appOwner) onReady(g generation, err error) {
	if g != a.gen || a.state != status.Starting {
		return
	}
	a.readyCancel = nil
	switch {
	case err == nil:
		a.state, a.health.healthy, a.message = status.Running, true, ""
		a.env.gated(g)
		a.answerStart(nil)
	case errors.Is(err, context.Canceled) || g.Exited():
	default:
		// Alive but not answering: serve what we have, say why.
		a.state, a.health.healthy, a.message = status.Running, false, err.Error()
		a.answerStart(&StartError{App: a.cfg.Name, Reason: "runs but is not ready: " + err.Error(), gen: g})
	}
}

// onExit handles the exit of the tracked generation.
func (a *appOwner) onExit(ctx context.Context, g generation) {
	info := g.Exit()
	a.gen, a.lastExit, a.exitedGen = nil, &info, g
	a.cancelReady()
	a.env.afterExit(g)
	gi := g.Info()
	a.env.log().Info("exited", "app", a.cfg.Name, "generation", gi.ID, "pid", gi.PID, "status", info.String())
	a.env.appExited(info)
	switch {
	case a.state == status.Stopping:
		a.finishStop(ctx)
	case a.reload != nil:
		// The reload's new generation takes over; reloadDone restarts if it does not.
		a.state = status.Starting
		a.message = "serving generation exited during reload: " + info.String()
	case a.broken != "":
		a.failBroken(info.String())
	default:
		a.scheduleRestart(info, time.Since(gi.Started), "")
	}
	a.startExited(g, info)
}

// scheduleRestart applies the restart policy after an exit (reason, if
// any, names a failure to start) and goes to Backoff, Failed or Stopped.
func (a *appOwner) scheduleRestart(info proc.ExitInfo, ranFor time.Duration, reason string) {
	now := time.Now()
	d := a.policy.Exited(a.cfg, info.Code == 0 && info.Signal == 0, ranFor, now)
	if !d.Restart {
		a.state = status.Stopped
		a.message = "exited (" + info.String() + "); " + d.Reason
		return
	}
	a.state = status.Backoff
	switch {
	case d.Failed:
		a.state = status.Failed
		a.message = fmt.Sprintf("crash loop: %d exits within %s (last: %s); retrying every %s", d.Crashes, a.cfg.Backoff.CrashWindow, info, d.Delay)
	case reason != "":
		a.message = reason
	default:
		a.message = "exited (" + info.String() + ")"
	}
	a.restarts++
	a.nextRestart = now.Add(d.Delay)
	a.timer = time.NewTimer(d.Delay)
}

// healthCheck starts one periodic check of the tracked generation.
func (a *appOwner) healthCheck(ctx context.Context) {
	if a.state != status.Running || a.gen == nil || a.health.busy || a.reload != nil {
		return
	}
	g, addr := a.gen, a.gen.Info().ProbeAddr
	if addr == "" && a.cfg.Kind == config.KindGunicorn {
		return
	}
	a.health.busy = true
	go func() {
		err := a.probe.Check(ctx, addr)
		_ = a.post(ctx, healthResultMsg{call: newCall(), gen: g, err: err}) // fails only at shutdown
	}()
}

// onHealth records a periodic check of g: unhealthy after unhealthy_after
// failures in a row, then (restart_when_unhealthy) a swap reload.
func (a *appOwner) onHealth(ctx context.Context, g generation, err error) {
	a.health.busy = false
	if a.state != status.Running || g != a.gen {
		return
	}
	if err == nil {
		a.health.fails = 0
		if !a.health.healthy {
			a.env.log().Info("healthy", "app", a.cfg.Name)
			a.message = ""
		}
		a.health.healthy = true
		a.env.changed()
		return
	}
	a.health.fails++
	if a.health.fails < a.cfg.Health.UnhealthyAfter {
		return
	}
	if a.health.healthy {
		a.env.log().Warn("unhealthy", "app", a.cfg.Name, "err", err)
	}
	a.health.healthy = false
	a.message = fmt.Sprintf("unhealthy: %d checks failed: %v", a.health.fails, err)
	if a.cfg.Health.RestartWhenUnhealthy && a.reload == nil {
		// The configured strategy, but never an in-place re-exec of a master
		// that is unhealthy: its fallback then.
		s := a.cfg.Reload.Strategy.Fallback()
		a.env.log().Warn("restarting unhealthy app by reload", "app", a.cfg.Name, "strategy", s.String())
		a.beginReload(ctx, reloadMsg{call: newCall(), strategy: &s})
	}
}

// publish stores a fresh snapshot and wakes the daemon when what it reads
// (state, health, reloading) changed, only once the snapshot is visible.
func (a *appOwner) publish() {
	s := &status.AppSnapshot{
		Name:          a.cfg.Name,
		Kind:          a.cfg.Kind.String(),
		State:         a.state,
		Healthy:       a.health.healthy,
		HealthChecked: a.cfg.Health.Enabled,
		Restarts:      a.restarts,
		NextRestart:   a.nextRestart,
		Backoff:       a.policy.Delay,
		Reloading:     a.reload != nil,
		Message:       a.message,
		Required:      a.cfg.Required,
		Wanted:        a.wants(),
		Attempted:     a.attempted,
		Reloads:       maps.Clone(a.reloads),
		Listeners:     a.env.listeners(),
		Kept:          a.keptSnapshot(),
		LastExit:      copyOf(a.lastExit),
		LastReload:    copyOf(a.lastReload),
	}
	if a.gen != nil {
		gi := a.gen.Info()
		s.MasterPID, s.Started, s.Release, s.Generation = gi.PID, gi.Started, gi.Dir, gi.ID
	}
	if addr := a.env.statsdAddr(); addr != "" {
		s.StatsdBridge = true
		s.StatsdAddr = addr
	}
	prev := a.snap.Swap(s)
	if prev != nil && (prev.State != s.State || prev.Healthy != s.Healthy || prev.Reloading != s.Reloading || prev.Attempted != s.Attempted || (prev.Kept == nil) != (s.Kept == nil)) {
		a.env.changed()
	}
}

// copyOf returns a copy of *p, nil for nil.
func copyOf[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
