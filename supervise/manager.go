package supervise

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
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
	// Stdout receives the output of the apps with log = "stdout" (default
	// os.Stdout).
	Stdout   io.Writer
	Observer status.Observer
	// StatsdAddr returns an app's statsd bridge address ("" for none).
	StatsdAddr func(app string) string
	// Sockets are listeners already held (from systemd or the previous
	// image) by app, in listen order; an app missing here binds its own.
	Sockets map[string][]*listen.Socket
	// Restore is the state the previous image handed over across an
	// in-place re-exec: its generations are adopted instead of started.
	Restore *upgrade.Handover
	// Cgroups, when not nil, holds one cgroup per app (see proc.Cgroups).
	Cgroups *proc.Cgroups
	// Orphans are a dead predecessor's processes (see recovery.FindOrphans;
	// nil: none). An app whose serving generation is among them, with its
	// sockets in Sockets or no listener, tracks it until a new generation
	// of its last gated release takes over (see recoverApp).
	Orphans *recovery.Orphans
	// OpenStatsd opens the statsd bridge of a Gunicorn app with statsd on
	// (at start and when an update adds the app; a no-op for an app that
	// has one). nil: no bridges.
	OpenStatsd func(app string) error
	// WatchLog gets each app log the Manager opens, for readers that follow
	// an app's output until the log closes (the error inbox). nil: none.
	WatchLog func(app string, log *logs.App)
	// BPFWhy says why BPF steering cannot be used here ("" when it can),
	// as `supervisor doctor` found at start. nil: probed when first needed.
	BPFWhy func() string
	// Routes, when not nil, gets the access lines of every Gunicorn app
	// with route_metrics on (see package apm).
	Routes *apm.Set
	// ErrorInbox, when not nil, returns an app's error inbox (nil: none),
	// which judges a canary generation too.
	ErrorInbox func(app string) *errinbox.Inbox
}

// Manager runs every app of one configuration: it holds one slot per app
// (its owner goroutine, sockets, log and cgroup) and answers requests by
// routing them to owners.
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
	// The collaborators of Options (defaults filled in), same names.
	routes     *apm.Set
	inbox      func(app string) *errinbox.Inbox
	logger     *slog.Logger
	observer   status.Observer
	statsd     func(string) string
	bpfWhy     func() string
	cgroups    *proc.Cgroups
	openStatsd func(app string) error
	watchLog   func(app string, log *logs.App)
	// stdoutSink is the sink shared by the apps with log = "stdout".
	stdoutSink io.Writer
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
	runCtx context.Context
	// bootCancel cancels Start's background run of the first starts;
	// bootDone is closed once every first start was asked for (or not).
	bootCancel context.CancelFunc
	bootDone   chan struct{}
	stopped    chan struct{}
	// spawner starts, re-executes and adopts the apps' generations and
	// tidies up after them; homes counts the live generations in each
	// generation home and ends what they leave behind.
	spawner *gen.Spawner
	homes   *contain.Homes
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Observer == nil {
		opts.Observer = status.NopObserver{}
	}
	if opts.StatsdAddr == nil {
		opts.StatsdAddr = func(string) string { return "" }
	}
	if opts.Stdout == nil {
		opts.Stdout = os.Stdout
	}
	m := &Manager{
		cfg: cfg, reaper: reaper, runDir: cmp.Or(cfg.Supervisor.RunDir, config.DefaultRunDir),
		logger: opts.Logger, observer: opts.Observer, statsd: opts.StatsdAddr, routes: opts.Routes, inbox: opts.ErrorInbox, bpfWhy: opts.BPFWhy,
		cgroups: opts.Cgroups, openStatsd: opts.OpenStatsd, watchLog: opts.WatchLog,
		apps: map[string]*appSlot{}, changes: make(chan struct{}, 1), exits: make(chan AppExit, 16),
		stopped: make(chan struct{}), stopping: make(chan struct{}), recordPoke: make(chan struct{}, 1),
		homes: &contain.Homes{Managed: reaper.Managed, Logger: opts.Logger},
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

// CloseSockets closes every held listener and every generation's steered
// one (at exit).
func (m *Manager) CloseSockets() {
	for _, v := range m.views() {
		if err := v.table.Close(); err != nil {
			m.logger.Warn("close listeners", "app", v.name, "err", err)
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
	m.runCtx = ctx
	m.spawner.Prefetch(ctx, m.Config().Apps)
	var set []*appOwner
	for _, a := range m.owners() {
		s := m.slot(a.cfg.Name) // its start flags are NewManager's, read-only from here
		if !s.needsNoStart && (s.restored || a.cfg.Autostart) {
			set = append(set, a)
		}
		go a.run(ctx)
		if s.recovering {
			go m.recoverApp(ctx, a, s.recoverDir)
		}
	}
	startCtx, cancel := context.WithCancel(ctx)
	m.bootCancel, m.bootDone = cancel, make(chan struct{})
	go func() {
		defer close(m.bootDone)
		for name, err := range m.startOrdered(startCtx, set) {
			if err != nil {
				m.logger.Error("start", "app", name, "err", err)
			}
		}
		m.booted.Store(true)
		m.changed()
	}()
}

// Changes delivers a token whenever an app became ready, unhealthy or exited
// (coalesced): the daemon recomputes readiness and status then.
func (m *Manager) Changes() <-chan struct{} { return m.changes }

// Exits delivers every exit of an app's serving generation (dropped if the
// reader lags: exit_with reads it).
func (m *Manager) Exits() <-chan AppExit { return m.exits }

func (m *Manager) changed() { offer(m.changes, struct{}{}) }

func (m *Manager) appExited(name string, info proc.ExitInfo) {
	offer(m.exits, AppExit{App: name, Exit: info})
	m.changed()
}

// offer sends v on ch unless ch's buffer is full (a reader lags, or a
// token already waits there); it never blocks.
func offer[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
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

// ask sends msg to app name's owner and returns its answer; for a start
// or a restart that is the start's outcome (see startAndWait). An unknown
// name is ErrNoSuchApp.
func (m *Manager) ask(ctx context.Context, name string, msg message) error {
	a, err := m.owner(name)
	if err != nil {
		return err
	}
	switch msg.(type) {
	case startMsg, restartMsg:
		return m.startAndWait(ctx, a, msg)
	}
	return a.send(ctx, msg)
}

// StartApp asks app name to run and returns the start's outcome: nil once
// it counts as started (a process: running after start_settle; Gunicorn:
// ready), else a *StartError (exited first, or not ready within
// start_timeout), waiting at most start_timeout + start_settle + 5 s.
func (m *Manager) StartApp(ctx context.Context, name string) error {
	return m.ask(ctx, name, startMsg{newCall()})
}

// StopApp stops app name and returns once nothing of it runs.
func (m *Manager) StopApp(ctx context.Context, name string) error {
	return m.ask(ctx, name, stopMsg{call: newCall(), refuse: true})
}

// RestartApp stops the serving generation and starts a new one at once; the
// held sockets keep arriving clients in the backlog meanwhile. It returns
// once the old generation has exited and the new one's start has an
// outcome (see StartApp).
func (m *Manager) RestartApp(ctx context.Context, name string) error {
	return m.ask(ctx, name, restartMsg{newCall()})
}

// signalMsg asks the owner to send sig to the tracked generation's main
// process; answered ErrNotRunning when there is none. pid receives the
// process signalled.
type signalMsg struct {
	call
	sig syscall.Signal
	pid *int
}

// SignalApp sends sig to the main process of app name's serving generation
// (a Gunicorn master: TTIN adds a worker, TTOU removes one) and returns its
// PID; ErrNotRunning when the app has none.
func (m *Manager) SignalApp(ctx context.Context, name string, sig syscall.Signal) (int, error) {
	var pid int
	if err := m.ask(ctx, name, signalMsg{call: newCall(), sig: sig, pid: &pid}); err != nil {
		return 0, err
	}
	return pid, nil
}

// onSignal sends m's signal to the tracked generation off the owner's
// goroutine (a stop signal to a Gunicorn master may wait for its turn on
// the app's Unix sockets, see gen.Generation.Signal).
func (a *appOwner) onSignal(m signalMsg) {
	g := a.gen
	if g == nil || g.Exited() {
		m.reply <- fmt.Errorf("%w: app %s has no running process to signal", ErrNotRunning, a.cfg.Name)
		return
	}
	*m.pid = g.Info().PID
	go func() { m.reply <- g.Signal(m.sig) }()
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

// Stop stops every app (see stopAll), all within ctx (the shutdown
// timeout); whatever still runs when ctx ends is killed. Then it ends any
// process left among the supervisor's children (TERM, KILL after
// orphanGrace), closes every listener, and ends the apps' logs once their
// output is read and written (within logCloseLimit). Safe to call twice.
func (m *Manager) Stop(ctx context.Context) error {
	if !m.started {
		return nil
	}
	select {
	case <-m.stopped:
		return nil
	default:
	}
	m.bootCancel()
	<-m.bootDone
	// An update in progress is cancelled and finishes before the apps it
	// adds or replaces are listed.
	m.stopOnce.Do(func() { close(m.stopping) })
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	errs := m.stopAll(ctx)
	m.cancel()
	for _, a := range m.owners() {
		<-a.exited
	}
	if left := proc.Terminate(func() []int { return proc.OwnChildren(nil) }, orphanGrace, 20*time.Millisecond); len(left) > 0 {
		m.logger.Error("children survived SIGKILL", "pids", left)
	}
	m.CloseSockets()
	if err := logs.CloseApps(logCloseLimit, m.allLogs()...); err != nil {
		errs = append(errs, fmt.Errorf("close app logs: %w", err))
	}
	close(m.stopped)
	return errors.Join(errs...)
}

// orphanGrace is how long Stop waits for the children left after the apps
// stopped to exit after SIGTERM, and again after SIGKILL.
const orphanGrace = 5 * time.Second

// logCloseLimit bounds how long a stopping Manager waits for its apps'
// captures to finish and their sinks to take the last lines.
const logCloseLimit = 5 * time.Second

// stopAll stops every app, in parallel except that an app stops before the
// apps it names in after and requires, each within its stop_timeout, and
// ends what each left behind (see contain.Homes.EndApp). It returns the
// failed stops.
func (m *Manager) stopAll(ctx context.Context) []error {
	owners := m.owners()
	results := ordered(owners, true, func(a *appOwner) error {
		// The supervisor's copies of the app's sockets and of their steering
		// go first: once the draining workers have closed theirs, new clients
		// are refused at once (a proxy retries elsewhere) instead of waiting
		// in a backlog nobody will accept from. The paths stay until every
		// app has stopped: a Gunicorn master unlinks its socket's name as it
		// stops and fails if the name is gone.
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
	return errs
}

// afterExit tidies up once g's main process has exited (see
// gen.Spawner.Finish: its exit noted in the app's log, what it left behind
// ended, its home closed when it was the last there) and restores the held
// names of the app's Unix sockets (see relink).
func (m *Manager) afterExit(g *gen.Generation) {
	m.spawner.Finish(g, m.view(g.App).log, m.stopTimeout(g.App))
	m.relink(g.App)
}

// relink restores the held names of app's Unix sockets after a Gunicorn
// master removed its bound name on exit (see listen.Table.Relink).
func (m *Manager) relink(app string) {
	if err := m.view(app).table.Relink(); err != nil {
		m.logger.Error("unix socket", "app", app, "err", err)
	}
}
