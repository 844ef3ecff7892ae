package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gunisup/supervisor/apm"
	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/contain"
	"github.com/gunisup/supervisor/errinbox"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
	"github.com/gunisup/supervisor/upgrade"
)

// Options are the Manager's collaborators; zero values are usable.
type Options struct {
	Logger *slog.Logger
	// Stdout receives the output lines of the apps with log = "stdout"
	// (default os.Stdout).
	Stdout   io.Writer
	Observer status.Observer
	// StatsdAddr returns the statsd bridge address for an app ("" for none).
	StatsdAddr func(app string) string
	// Sockets are listeners already held (inherited from systemd or from the
	// previous image), keyed by app name, in the order of the app's listen
	// list; an app missing here gets its sockets bound.
	Sockets map[string][]*listen.Socket
	// Restore is the state handed over by the previous image across an
	// in-place re-exec; its generations are adopted instead of started.
	Restore *upgrade.Handover
	// Cgroups, when not nil, holds one cgroup per app (see proc.Cgroups).
	Cgroups *proc.Cgroups
	// Orphans are a dead predecessor's processes (see recovery.FindOrphans), nil for
	// none. An app whose serving generation is among them and whose
	// sockets are in Sockets (taken from them, or systemd's), or that has
	// no listener, tracks that generation (Starting) until a new generation
	// of the last gated release passes the gate and takes over (see
	// recoverApp); the steering of its listeners (BPF, rename) is rebuilt
	// on the sockets taken from them.
	Orphans *recovery.Orphans
	// OpenStatsd opens the statsd bridge of a Gunicorn app with statsd on,
	// at start and when an update adds the app; StatsdAddr reports its
	// address from then on. It must do nothing for an app that has one.
	// nil: no bridges.
	OpenStatsd func(app string) error
	// WatchLog is called with each app log the Manager opens, at start and
	// when an update opens one (an added app, new listeners), for readers
	// that follow an app's output (the error inbox); the reader ends when
	// the log closes. nil: none.
	WatchLog func(app string, log *logs.App)
	// BPFWhy says why BPF steering cannot be used on this host ("" when it
	// can): the daemon passes what `supervisor doctor` found at start, so
	// the listeners and the doctor agree. nil: probed when first needed.
	BPFWhy func() string
	// Routes, when not nil, gets the access lines of every Gunicorn app
	// with route_metrics on (see package apm).
	Routes *apm.Set
	// ErrorInbox, when not nil, returns an app's error inbox (nil for
	// none): a canary generation with an exception group of its own, or
	// whose workers die, is worse.
	ErrorInbox func(app string) *errinbox.Inbox
}

// Manager runs every app of one configuration: it holds their sockets and
// one owner goroutine per app, and answers requests by routing them to owners.
type Manager struct {
	// mu guards cfg, apps, order and the slots' fields named in appSlot: an
	// update replaces them while requests read them.
	mu sync.RWMutex
	// updateMu makes updates run one at a time, and Stop wait for one.
	updateMu sync.Mutex
	// stopping is closed when Stop begins: it cancels an update.
	stopping chan struct{}
	stopOnce sync.Once
	cfg      *config.Config
	reaper   *proc.Reaper
	// routes holds the apps' route metrics (nil: none).
	routes *apm.Set
	// inbox returns an app's error inbox (nil: none).
	inbox  func(app string) *errinbox.Inbox
	logger *slog.Logger
	// stdoutSink is the sink shared by the apps with log = "stdout".
	stdoutSink io.Writer
	observer   status.Observer
	statsd     func(string) string
	runDir     string
	// apps holds one slot per app name the Manager ran (see appSlot);
	// order has the present apps' owners in file order, removed ones last
	// until an update has stopped them.
	apps    map[string]*appSlot
	order   []*appOwner
	changes chan struct{}
	exits   chan AppExit
	cancel  context.CancelFunc
	started bool
	// booted is set once Start has asked every app to start.
	booted atomic.Bool
	// runCtx is the context Start runs the owners under; owners an update
	// adds run under it too.
	runCtx  context.Context
	boot    bootRun
	stopped chan struct{}
	// spawner starts, re-executes and adopts the apps' generations and
	// tidies up after them (see gen.Spawner).
	spawner *gen.Spawner
	// cgroupRoot creates the apps' cgroups (nil: none).
	cgroupRoot *proc.Cgroups
	// homes counts the live generations in each generation home and ends
	// what they leave behind (see contain.Homes).
	homes      *contain.Homes
	openStatsd func(app string) error
	watchLog   func(app string, log *logs.App)
	// bpfWhy says why BPF steering is unavailable ("" if it is); nil: the
	// kernel is probed where a listener needs to know (listen.WhyNoBPF).
	bpfWhy func() string
	// record is the run state's writer (see RecordRunState); a token
	// in recordPoke asks for a write soon (see RecordPokes).
	record     recovery.Recorder
	recordPoke chan struct{}
}

// nextGen allocates the next generation number of an app (1-based); safe
// from any goroutine.
func (m *Manager) nextGen(app string) int64 {
	return m.slot(app).genSeq.Add(1)
}

// owners returns the app owners in file order.
func (m *Manager) owners() []*appOwner {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.order)
}

// Config returns the configuration the Manager runs (the last one applied
// by Update).
func (m *Manager) Config() *config.Config {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cfg
}

// AppExit is an app's generation exit, for exit_with.
type AppExit struct {
	App  string
	Exit proc.ExitInfo
}

// NewManager binds every listener the configuration asks for. On any error
// it closes what it bound and returns the error: nothing is started.
func NewManager(cfg *config.Config, reaper *proc.Reaper, opts Options) (*Manager, error) {
	m := &Manager{
		cfg:        cfg,
		reaper:     reaper,
		logger:     opts.Logger,
		observer:   opts.Observer,
		statsd:     opts.StatsdAddr,
		runDir:     cfg.Supervisor.RunDir,
		apps:       map[string]*appSlot{},
		changes:    make(chan struct{}, 1),
		exits:      make(chan AppExit, 16),
		stopped:    make(chan struct{}),
		stopping:   make(chan struct{}),
		bpfWhy:     opts.BPFWhy,
		recordPoke: make(chan struct{}, 1),
		// Set before openAll, which uses them.
		cgroupRoot: opts.Cgroups,
		openStatsd: opts.OpenStatsd,
		watchLog:   opts.WatchLog,
		routes:     opts.Routes,
		inbox:      opts.ErrorInbox,
	}
	if m.logger == nil {
		m.logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m.homes = &contain.Homes{Managed: reaper.Managed, Logger: m.logger}
	if m.observer == nil {
		m.observer = status.NopObserver{}
	}
	if m.statsd == nil {
		m.statsd = func(string) string { return "" }
	}
	if m.runDir == "" {
		m.runDir = config.DefaultRunDir
	}
	m.spawner = &gen.Spawner{Reaper: reaper, Prober: gunicorn.NewProber(reaper.OutputSpec), RunDir: m.runDir, StatsdAddr: m.statsd,
		PassEnv: func() []string { return m.Config().Supervisor.PassEnv }, Routes: opts.Routes, Homes: m.homes, Logger: m.logger}
	if err := os.MkdirAll(m.runDir, 0o750); err != nil {
		return nil, fmt.Errorf("run_dir %s: %w", m.runDir, err)
	}
	if err := m.openAll(opts); err != nil {
		return nil, err
	}
	for _, app := range cfg.Apps {
		a := newAppOwner(m, app)
		m.mu.Lock()
		m.apps[app.Name].owner = a
		m.order = append(m.order, a)
		m.mu.Unlock()
	}
	m.restoreAll(opts.Restore)
	m.adoptAll(opts)
	m.setAside(cfg)
	return m, nil
}

// abandonOpen undoes openAll after err, app's failure to open, and returns
// err with whatever the undoing failed at. On a fresh start it closes the
// sockets: those of the apps opened so far, and app's held ones and their
// steering (held, nil for none). On a take-over from a previous image (restore) every socket and
// steering descriptor stays open: the state names them, and the caller
// either hands them back to that image (upgrade.Fallback) or exits.
func (m *Manager) abandonOpen(err error, restore bool, held *listen.Held) error {
	if !restore {
		err = errors.Join(err, held.Close())
		m.CloseSockets()
	}
	_ = logs.CloseApps(0, m.allLogs()...) // nothing was captured yet: nothing to lose
	return err
}

// CloseSockets closes every held listener and every generation's steered
// one (at exit).
func (m *Manager) CloseSockets() {
	for name, v := range m.views() {
		if err := v.table.Close(); err != nil {
			m.logger.Warn("close listeners", "app", name, "err", err)
		}
	}
}

// Start starts each app's owner and, in the background, asks every app with
// autostart (or handed over as wanted but not running) to start: in
// parallel, each after the apps it names in after and requires have
// settled. Readiness counts nothing as started before every start was asked
// for; Stop cancels the starts not yet asked for.
func (m *Manager) Start(ctx context.Context) {
	if m.started {
		return
	}
	m.started = true
	ctx, m.cancel = context.WithCancel(ctx)
	// Which apps to start is decided before their owners run: from then on
	// an owner's state belongs to its goroutine alone.
	owners := m.owners()
	skip := make(map[*appOwner]bool, len(owners))
	for _, a := range owners {
		// handed over running or stopped by request; else autostart decides
		s := m.slot(a.cfg.Name)
		skip[a] = s.needsNoStart || (!s.restored && !a.cfg.Autostart)
	}
	m.spawner.Prefetch(ctx, m.Config().Apps)
	m.runCtx = ctx
	for _, a := range owners {
		go a.run(ctx)
	}
	for _, a := range owners {
		if s := m.slot(a.cfg.Name); s.recovering {
			go m.recoverApp(ctx, a, s.recoverDir)
		}
	}
	var set []*appOwner
	for _, a := range owners {
		if !skip[a] {
			set = append(set, a)
		}
	}
	startCtx, cancel := context.WithCancel(ctx)
	m.boot = bootRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(m.boot.done)
		for name, err := range m.startOrdered(startCtx, set) {
			if err != nil {
				m.logger.Error("start", "app", name, "err", err)
			}
		}
		m.booted.Store(true)
		m.changed()
	}()
}

// bootRun is Start's background run of the first starts.
type bootRun struct {
	cancel context.CancelFunc
	// done is closed once every first start was asked for (or cancelled).
	done chan struct{}
}

// Changes delivers a token whenever an app became ready, unhealthy or exited
// (coalesced): the daemon recomputes readiness and status then.
func (m *Manager) Changes() <-chan struct{} { return m.changes }

// Exits delivers every exit of an app's serving generation (dropped if the
// reader lags: exit_with reads it).
func (m *Manager) Exits() <-chan AppExit { return m.exits }

func (m *Manager) changed() {
	select {
	case m.changes <- struct{}{}:
	default:
	}
}

func (m *Manager) appExited(name string, info proc.ExitInfo) {
	select {
	case m.exits <- AppExit{App: name, Exit: info}:
	default:
	}
	m.changed()
}

func (m *Manager) owner(name string) (*appOwner, error) {
	a := m.view(name).owner
	if a == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchApp, name)
	}
	return a, nil
}

// ErrNoSuchApp is returned for an app name the configuration does not have
// (the error config.Config.Resolve wraps, so callers test for one).
var ErrNoSuchApp = config.ErrNoSuchApp

// StartApp asks app name to run and returns the start's outcome: nil once
// it counts as started (a process: running after start_settle; Gunicorn:
// ready), else a *StartError (exited first, or not ready within
// start_timeout), waiting at most start_timeout + start_settle + 5 s.
func (m *Manager) StartApp(ctx context.Context, name string) error {
	a, err := m.owner(name)
	if err != nil {
		return err
	}
	return m.startAndWait(ctx, a, startMsg{newCall()})
}

// StopApp stops app name and returns once nothing of it runs.
func (m *Manager) StopApp(ctx context.Context, name string) error {
	a, err := m.owner(name)
	if err != nil {
		return err
	}
	return a.send(ctx, stopMsg{call: newCall(), refuse: true})
}

// RestartApp stops the serving generation and starts a new one at once; the
// held sockets keep arriving clients in the backlog meanwhile. It returns
// once the old generation has exited and the new one's start has an
// outcome (see StartApp).
func (m *Manager) RestartApp(ctx context.Context, name string) error {
	a, err := m.owner(name)
	if err != nil {
		return err
	}
	return m.startAndWait(ctx, a, restartMsg{newCall()})
}

// Reload replaces app name's serving generation (see package reload). It
// blocks until the reload ends; progress receives each phase. The error is
// ErrBusy, ErrNotRunning or a *reload.Failure (the old generation serves).
func (m *Manager) Reload(ctx context.Context, name string, strategy *strategy.Strategy, progress reload.Progress) error {
	return m.reloadOrDeploy(ctx, name, strategy, "", progress)
}

// Deploy points app name's `directory` symlink at release and reloads; on
// failure the link is pointed back.
func (m *Manager) Deploy(ctx context.Context, name, release string, strategy *strategy.Strategy, progress reload.Progress) error {
	if release == "" {
		return errors.New("deploy: no release directory")
	}
	return m.reloadOrDeploy(ctx, name, strategy, release, progress)
}

func (m *Manager) reloadOrDeploy(ctx context.Context, name string, strategy *strategy.Strategy, release string, progress reload.Progress) error {
	a, err := m.owner(name)
	if err != nil {
		return err
	}
	plan, on := reload.CanaryOf(ctx)
	if !on && strategy == nil {
		plan = a.cfg.Reload.Canary // a user's reload without either runs the configured canary
	}
	return a.send(ctx, reloadMsg{call: newCall(), strategy: strategy, release: release, progress: progress, canary: plan})
}

// Ping returns nil when every app owner answers within ctx: the
// supervision loops are alive (liveness, and the systemd watchdog).
func (m *Manager) Ping(ctx context.Context) error {
	for _, a := range m.owners() {
		if err := a.send(ctx, pingMsg{newCall()}); err != nil {
			return fmt.Errorf("app %s: owner not answering: %w", a.cfg.Name, err)
		}
	}
	return nil
}

// Snapshots returns a fresh copy of every app's state, in file order, with
// worker PIDs read from /proc in one scan.
func (m *Manager) Snapshots() []status.AppSnapshot {
	tree, _ := proc.NewTree("") // without /proc, worker lists stay empty
	owners := m.owners()
	out := make([]status.AppSnapshot, 0, len(owners))
	for _, a := range owners {
		s := *a.snap.Load()
		if s.MasterPID != 0 && tree != nil {
			kids := append([]int(nil), tree.LiveChildren(s.MasterPID)...)
			sort.Ints(kids)
			s.WorkerPIDs = kids
		}
		s.Processes = m.homes.Count(s.Name, m.view(s.Name).cgroup, s.MasterPID, tree)
		if st := m.workerStats(s.Name); st != nil {
			s.WorkersTarget, s.WorkersRecycled = st.Target(), st.Recycled()
		}
		s.Comparison = joinLines(m.slot(s.Name).canary.Status(), m.routes.Comparison(s.Name))
		m.logReport(&s)
		out = append(out, s)
	}
	return out
}

// Readiness assesses the apps' snapshots (see status.Assess); nothing counts as
// started before Start has asked every app to start.
func (m *Manager) Readiness() status.Readiness {
	r := status.Assess(m.Snapshots())
	if !m.booted.Load() {
		r.Started = false
	}
	return r
}

// Stop stops every app, in parallel except that an app stops before the
// apps it names in after and requires, each within its stop_timeout,
// all within ctx (the shutdown timeout); whatever still runs when ctx ends
// is killed. Then it ends any orphan left among the supervisor's children,
// and ends the apps' logs once their output is read and written (within
// logCloseLimit). Safe to call twice.
func (m *Manager) Stop(ctx context.Context) error {
	if !m.started {
		return nil
	}
	select {
	case <-m.stopped:
		return nil
	default:
	}
	m.boot.cancel()
	<-m.boot.done
	// An update in progress is cancelled and finishes before the apps it
	// adds or replaces are listed.
	m.stopOnce.Do(func() { close(m.stopping) })
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	owners := m.owners()
	results := ordered(owners, true, func(a *appOwner) error {
		// At shutdown the supervisor's copy of the app's sockets goes first:
		// once the draining workers have closed theirs, new clients are
		// refused at once (a proxy retries elsewhere) instead of waiting in a
		// backlog nobody will accept from, to be reset at exit. The paths
		// stay until every app has stopped: a Gunicorn master unlinks its
		// socket's name as it stops and fails if the name is gone.
		// The steered copies go too (Table.ShutSteering).
		t := m.view(a.cfg.Name).table
		if err := errors.Join(t.ShutHeld(), t.ShutSteering()); err != nil {
			m.logger.Warn("close listeners", "app", a.cfg.Name, "err", err)
		}
		return a.send(ctx, stopMsg{call: newCall()})
	})
	var errs []error
	for _, a := range owners {
		if err := results[a.cfg.Name]; err != nil {
			errs = append(errs, fmt.Errorf("stop %s: %w", a.cfg.Name, err))
		}
		m.homes.EndApp(a.cfg.Name, m.view(a.cfg.Name).cgroup)
	}
	m.cancel()
	for _, a := range m.owners() {
		<-a.exited
	}
	m.KillOrphans(5 * time.Second)
	m.CloseSockets()
	if err := logs.CloseApps(logCloseLimit, m.allLogs()...); err != nil {
		errs = append(errs, fmt.Errorf("close app logs: %w", err))
	}
	close(m.stopped)
	return errors.Join(errs...)
}

// KillOrphans TERMs every remaining child of the supervisor, KILLs the
// trees of those alive after grace, and waits (bounded by grace again) until
// the reaper has collected them; survivors are logged.
func (m *Manager) KillOrphans(grace time.Duration) {
	list := func() []int { return proc.OwnChildren(nil) }
	if left := proc.Terminate(list, grace, 20*time.Millisecond); len(left) > 0 {
		m.logger.Error("children survived SIGKILL", "pids", left)
	}
}

// afterExit tidies up once g's main process has exited (see
// gen.Spawner.Finish: its exit noted in the app's log, what it left behind
// ended, its home closed when it was the last there) and restores the held
// names of the app's Unix sockets, which a Gunicorn master removes on exit
// (see Socket.hold).
func (m *Manager) afterExit(g *gen.Generation) {
	m.spawner.Finish(g, m.view(g.App).log, m.stopTimeout(g.App))
	m.relink(g.App)
}

// relink restores the held names of app's Unix sockets after a Gunicorn
// master removed its bound name on exit (see Socket.hold).
func (m *Manager) relink(app string) {
	for _, s := range m.view(app).table.Sockets() {
		if err := s.Relink(); err != nil {
			m.logger.Error("unix socket", "app", app, "err", err)
		}
	}
}
