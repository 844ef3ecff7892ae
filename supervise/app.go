package supervise

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/health"
	"github.com/gunisup/supervisor/reload"
)

// ErrBusy is returned when a reload is asked for while one runs.
var ErrBusy = errors.New("busy")

// ErrNotRunning is returned by a reload of an app that is not running.
var ErrNotRunning = errors.New("not running")

type reqKind int

const (
	reqStart reqKind = iota
	reqStop
	reqRestart
	reqReload
	reqCommit
	reqReloadDone
	reqHealthResult
	reqPing
	reqFreeze
)

type request struct {
	kind     reqKind
	strategy *config.Strategy
	release  string
	progress reload.Progress
	gen      *Generation
	result   *ReloadResult
	failure  error
	ok       bool
	took     time.Duration
	appState *AppHandover
	thaw     <-chan struct{}
	reply    chan error
}

type readyResult struct {
	gen *Generation
	err error
}

// reloadRun is one reload in progress.
type reloadRun struct {
	cancel   context.CancelFunc
	started  time.Time
	strategy config.Strategy
	done     chan struct{}
}

// appOwner is the single goroutine that owns one app's state. Everything
// else talks to it with requests carrying their own reply channel, and reads
// the snapshot it publishes after every event.
type appOwner struct {
	cfg    *config.App
	m      *Manager
	reqs   chan request
	check  *health.Checker
	snap   atomic.Pointer[AppSnapshot]
	exited chan struct{} // closed when run returns

	// Fields below are touched only by run().
	state        State
	gen          *Generation
	want         bool
	restarts     int
	lastExit     *ExitInfo
	backoff      time.Duration
	nextRestart  time.Time
	crashes      []time.Time
	restartTimer *time.Timer
	readyCancel  context.CancelFunc
	readyCh      chan readyResult
	stopWaiters  []chan error
	stopping     bool
	reloading    *reloadRun
	lastReload   *ReloadResult
	reloads      map[string]int
	healthy      bool
	healthFails  int
	healthBusy   bool
	message      string
}

func newAppOwner(m *Manager, cfg *config.App) *appOwner {
	a := &appOwner{
		cfg:     cfg,
		m:       m,
		reqs:    make(chan request),
		readyCh: make(chan readyResult, 1),
		reloads: map[string]int{},
		exited:  make(chan struct{}),
	}
	a.check = health.New(cfg.Health, m.runCommand(cfg))
	a.publish()
	return a
}

// send delivers a request to the owner and waits for its reply, or for ctx.
func (a *appOwner) send(ctx context.Context, r request) error {
	r.reply = make(chan error, 1)
	select {
	case a.reqs <- r:
	case <-ctx.Done():
		return ctx.Err()
	case <-a.exited:
		return fmt.Errorf("app %s: supervisor is shutting down", a.cfg.Name)
	}
	select {
	case err := <-r.reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (a *appOwner) run(ctx context.Context) {
	defer close(a.exited)
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
		if a.restartTimer != nil {
			timerC = a.restartTimer.C
		}
		select {
		case r := <-a.reqs:
			a.handle(ctx, r)
		case <-genDone:
			a.onExit(ctx, a.gen)
		case r := <-a.readyCh:
			a.onReady(r)
		case <-timerC:
			a.restartTimer = nil
			if a.want && a.gen == nil {
				a.startGen(ctx)
			}
		case <-healthTick:
			a.healthCheck(ctx)
		case <-ctx.Done():
			// The manager stops apps before cancelling; this is the last resort.
			if a.gen != nil {
				a.gen.Kill()
			}
			return
		}
		a.publish()
	}
}

func (a *appOwner) handle(ctx context.Context, r request) {
	switch r.kind {
	case reqStart:
		a.want = true
		if a.gen != nil || a.stopping {
			r.reply <- nil
			return
		}
		a.cancelTimer()
		a.backoff = 0
		a.crashes = nil
		a.startGen(ctx)
		r.reply <- nil
	case reqStop:
		a.want = false
		a.cancelTimer()
		if a.reloading != nil {
			a.reloading.cancel()
		}
		a.stopWaiters = append(a.stopWaiters, r.reply)
		a.beginStop(ctx)
	case reqRestart:
		// Stop then start: the held sockets keep clients in the backlog.
		a.want = true
		a.cancelTimer()
		a.backoff = 0
		a.crashes = nil
		if a.gen == nil {
			a.startGen(ctx)
			r.reply <- nil
			return
		}
		old := a.gen
		a.gen = nil
		a.cancelReady()
		a.state = StateStopping
		a.message = "restarting"
		go func() {
			_, err := old.Stop(ctx, a.stopSignal(), a.cfg.StopTimeout)
			a.m.afterExit(old)
			r.reply <- err
		}()
		a.startGen(ctx)
	case reqReload:
		a.beginReload(ctx, r)
	case reqCommit:
		r.reply <- a.commit(r.gen)
	case reqReloadDone:
		a.reloadDone(ctx, r)
		r.reply <- nil
	case reqPing:
		r.reply <- nil
	case reqFreeze:
		a.freeze(r)
	case reqHealthResult:
		a.onHealth(ctx, r.ok, r.failure, r.took)
		r.reply <- nil
	}
}

func (a *appOwner) stopSignal() syscall.Signal {
	if s, ok := a.cfg.StopSignal.(syscall.Signal); ok {
		return s
	}
	return syscall.SIGTERM
}

func (a *appOwner) cancelTimer() {
	if a.restartTimer != nil {
		a.restartTimer.Stop()
		a.restartTimer = nil
	}
	a.nextRestart = time.Time{}
}

func (a *appOwner) cancelReady() {
	if a.readyCancel != nil {
		a.readyCancel()
		a.readyCancel = nil
	}
}

// beginStop stops the serving generation; the stop completes in onExit (or
// at once when nothing runs), which answers every stop waiter.
func (a *appOwner) beginStop(ctx context.Context) {
	a.cancelReady()
	if a.gen == nil {
		a.finishStop()
		return
	}
	if a.stopping {
		return
	}
	a.stopping = true
	a.state = StateStopping
	g := a.gen
	sig, timeout := a.stopSignal(), a.cfg.StopTimeout
	go func() {
		// The exit is observed by run() through g.Done(); an error here means
		// the process survived KILL and is logged.
		if _, err := g.Stop(ctx, sig, timeout); err != nil {
			a.m.logger.Error("stop", "app", a.cfg.Name, "err", err)
		}
	}()
}

// finishStop answers stop waiters once nothing of the app runs: no serving
// generation and no reload (whose own goroutine stops what it started).
func (a *appOwner) finishStop() {
	if a.gen != nil || a.reloading != nil {
		return
	}
	a.stopping = false
	if !a.want {
		a.state = StateStopped
		a.message = ""
	}
	for _, w := range a.stopWaiters {
		w <- nil
	}
	a.stopWaiters = nil
}

// startGen spawns a new generation and waits for readiness in the background.
func (a *appOwner) startGen(ctx context.Context) {
	id := int(a.m.nextGen(a.cfg.Name))
	g, err := a.m.spawn(ctx, a.cfg, id, "", a.cfg.Reload.Strategy)
	if err != nil {
		a.message = err.Error()
		a.m.logger.Error("start failed", "app", a.cfg.Name, "err", err)
		a.scheduleRestart(ExitInfo{Code: -1, Time: time.Now()}, 0)
		return
	}
	a.gen = g
	a.state = StateStarting
	a.message = ""
	a.healthy = false
	a.healthFails = 0
	rctx, cancel := context.WithCancel(ctx)
	a.readyCancel = cancel
	go func() {
		err := a.waitStarted(rctx, g)
		select {
		case a.readyCh <- readyResult{gen: g, err: err}:
		case <-rctx.Done():
		}
	}()
}

// waitStarted returns nil once g serves: for Gunicorn a request answered on
// its probe listener (and one health pass where a check exists); for a
// process, still running one second after start (and one health pass).
func (a *appOwner) waitStarted(ctx context.Context, g *Generation) error {
	ctx, cancel := context.WithTimeout(ctx, a.cfg.StartTimeout)
	defer cancel()
	if a.cfg.Kind == config.KindProcess {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-g.Done():
			return fmt.Errorf("exited during start: %s", g.Exit())
		case <-ctx.Done():
			return fmt.Errorf("not started within start_timeout %s", a.cfg.StartTimeout)
		case <-t.C:
		}
		if !a.cfg.Health.Enabled {
			return nil
		}
	}
	return a.pollReady(ctx, g, 1)
}

// pollReady waits until g answers (Gunicorn) and passes the health check
// passes consecutive times, or g exits, or ctx ends.
func (a *appOwner) pollReady(ctx context.Context, g *Generation, passes int) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	answered := a.cfg.Kind == config.KindProcess || g.ProbeAddr == ""
	ok := 0
	var last error
	interval := a.cfg.Health.Interval
	for {
		if g.Exited() {
			return fmt.Errorf("exited: %s", g.Exit())
		}
		if !answered {
			if err := a.check.Answered(ctx, g.ProbeAddr, time.Second); err == nil {
				answered = true
				if !a.cfg.Health.Enabled {
					return nil
				}
			} else {
				last = err
			}
		}
		if answered {
			start := time.Now()
			err := a.check.Check(ctx, g.ProbeAddr)
			a.m.observer.HealthChecked(a.cfg.Name, err == nil, time.Since(start))
			if err == nil {
				ok++
				if ok >= passes {
					return nil
				}
			} else {
				ok = 0
				// A check cut short by the deadline says nothing about the
				// app: keep the last real verdict ("status 500") for the
				// reason. (Reload e2e tests: TestBrokenRelease swap/Health500.)
				if last == nil || ctx.Err() == nil {
					last = err
				}
			}
			// Between health passes wait the configured interval (bounded so a
			// reload's gate does not take minutes with a long interval).
			w := interval
			if w > time.Second {
				w = time.Second
			}
			t := time.NewTimer(w)
			select {
			case <-g.Done():
				t.Stop()
				return fmt.Errorf("exited: %s", g.Exit())
			case <-ctx.Done():
				t.Stop()
				return a.readyErr(ctx, last)
			case <-t.C:
			}
			continue
		}
		select {
		case <-g.Done():
			return fmt.Errorf("exited: %s", g.Exit())
		case <-ctx.Done():
			return a.readyErr(ctx, last)
		case <-tick.C:
		}
	}
}

func (a *appOwner) readyErr(ctx context.Context, last error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		if last != nil {
			return fmt.Errorf("not ready in time: last check: %v", last)
		}
		return errors.New("not ready in time")
	}
	return ctx.Err()
}

func (a *appOwner) onReady(r readyResult) {
	if r.gen != a.gen {
		return
	}
	a.readyCancel = nil
	if r.err != nil {
		if errors.Is(r.err, context.Canceled) {
			return
		}
		if !r.gen.Exited() {
			// Alive but not answering: serve what we have, say why.
			a.state = StateRunning
			a.healthy = false
			a.message = r.err.Error()
		}
		return
	}
	a.state = StateRunning
	a.healthy = true
	a.message = ""
	a.m.appReady()
}

// onExit handles the exit of the serving generation.
func (a *appOwner) onExit(ctx context.Context, g *Generation) {
	info := g.Exit()
	a.gen = nil
	a.lastExit = &info
	a.cancelReady()
	a.m.afterExit(g)
	a.m.logger.Info("exited", "app", a.cfg.Name, "generation", g.ID, "pid", g.PID, "status", info.String())
	a.m.appExited(a.cfg.Name, info)
	if a.stopping || !a.want {
		a.finishStop()
		return
	}
	if a.reloading != nil {
		// The reload's new generation will take over; if it fails, reloadDone restarts.
		a.state = StateStarting
		a.message = "serving generation exited during reload: " + info.String()
		return
	}
	a.scheduleRestart(info, time.Since(g.Started))
}

// scheduleRestart applies the restart policy after an exit: exponential
// backoff capped at Backoff.Max, reset after a stable run; too many exits
// within the crash window mark the app failed, but it is still retried.
func (a *appOwner) scheduleRestart(info ExitInfo, ranFor time.Duration) {
	switch a.cfg.Restart {
	case config.RestartNever:
		a.want = false
		a.state = StateStopped
		a.message = "exited (" + info.String() + "); restart = never"
		return
	case config.RestartOnFailure:
		if info.Code == 0 && info.Signal == 0 {
			a.want = false
			a.state = StateStopped
			a.message = "exited cleanly; restart = on-failure"
			return
		}
	}
	b := a.cfg.Backoff
	if ranFor >= b.StableAfter {
		a.backoff = 0
	}
	if a.backoff == 0 {
		a.backoff = b.Initial
	} else {
		a.backoff *= 2
		if a.backoff > b.Max {
			a.backoff = b.Max
		}
	}
	now := time.Now()
	a.crashes = append(a.crashes, now)
	keep := a.crashes[:0]
	for _, c := range a.crashes {
		if now.Sub(c) <= b.CrashWindow {
			keep = append(keep, c)
		}
	}
	a.crashes = keep
	a.state = StateBackoff
	if len(a.crashes) > b.CrashLimit {
		a.state = StateFailed
		a.message = fmt.Sprintf("crash loop: %d exits within %s (last: %s); retrying every %s", len(a.crashes), b.CrashWindow, info, a.backoff)
	} else if a.message == "" || !strings.HasPrefix(a.message, "app ") {
		a.message = "exited (" + info.String() + ")"
	}
	a.restarts++
	a.nextRestart = now.Add(a.backoff)
	a.restartTimer = time.NewTimer(a.backoff)
}

// healthCheck runs one periodic check of the serving generation.
func (a *appOwner) healthCheck(ctx context.Context) {
	if a.state != StateRunning || a.gen == nil || a.healthBusy || a.reloading != nil {
		return
	}
	g := a.gen
	if g.ProbeAddr == "" && a.cfg.Kind == config.KindGunicorn {
		return
	}
	a.healthBusy = true
	go func() {
		start := time.Now()
		err := a.check.Check(ctx, g.ProbeAddr)
		took := time.Since(start)
		// A detached send: the owner may be busy; it never blocks on us.
		_ = a.send(ctx, request{kind: reqHealthResult, ok: err == nil, failure: err, took: took}) // fails only at shutdown
	}()
}

func (a *appOwner) onHealth(ctx context.Context, ok bool, err error, took time.Duration) {
	a.healthBusy = false
	a.m.observer.HealthChecked(a.cfg.Name, ok, took)
	if a.state != StateRunning {
		return
	}
	if ok {
		a.healthFails = 0
		if !a.healthy {
			a.m.logger.Info("healthy", "app", a.cfg.Name)
			a.message = ""
		}
		a.healthy = true
		a.m.appReady()
		return
	}
	a.healthFails++
	if a.healthFails >= a.cfg.Health.UnhealthyAfter {
		if a.healthy {
			a.m.logger.Warn("unhealthy", "app", a.cfg.Name, "err", err)
		}
		a.healthy = false
		a.message = fmt.Sprintf("unhealthy: %d checks failed: %v", a.healthFails, err)
		if a.cfg.Health.RestartWhenUnhealthy && a.reloading == nil {
			a.m.logger.Warn("restarting unhealthy app by swap", "app", a.cfg.Name)
			s := config.StrategySwap
			a.beginReload(ctx, request{kind: reqReload, strategy: &s, progress: func(string) {}, reply: make(chan error, 1)})
		}
	}
}

// snapshot builds the published copy of the state.
func (a *appOwner) publish() {
	s := &AppSnapshot{
		Name:          a.cfg.Name,
		Kind:          a.cfg.Kind.String(),
		State:         a.state,
		Healthy:       a.healthy,
		HealthChecked: a.cfg.Health.Enabled,
		Restarts:      a.restarts,
		NextRestart:   a.nextRestart,
		Backoff:       a.backoff,
		Reloading:     a.reloading != nil,
		Message:       a.message,
		Reloads:       map[string]int{},
	}
	for k, v := range a.reloads {
		s.Reloads[k] = v
	}
	if a.lastExit != nil {
		e := *a.lastExit
		s.LastExit = &e
	}
	if a.lastReload != nil {
		r := *a.lastReload
		s.LastReload = &r
	}
	if a.gen != nil {
		s.MasterPID = a.gen.PID
		s.Started = a.gen.Started
		s.Release = a.gen.Dir
		s.Generation = a.gen.ID
	}
	for _, sock := range a.m.sockets[a.cfg.Name] {
		s.Listeners = append(s.Listeners, listenerSnapshot(sock))
	}
	if addr := a.m.statsdAddr(a.cfg.Name); addr != "" {
		s.StatsdBridge = true
		s.StatsdAddr = addr
	}
	prev := a.snap.Swap(s)
	// Wake the daemon only now that the new snapshot is visible: the
	// changed() calls in the handlers run before publish, so a reader woken by
	// them alone may read the previous snapshot and miss, say, the start or
	// the end of a reload (RELOADING=1 / READY=1 for systemd).
	if prev != nil && (prev.State != s.State || prev.Healthy != s.Healthy || prev.Reloading != s.Reloading) {
		a.m.changed()
	}
}
