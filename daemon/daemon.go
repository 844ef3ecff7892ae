// Package daemon wires the supervisor together: configuration, reaper,
// held sockets, app owners, control API, metrics and systemd notification.
// cmd/supervisor only parses arguments and calls Run.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/apm"
	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/metrics"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/sdnotify"
	"github.com/gunisup/supervisor/status"
	"github.com/gunisup/supervisor/supervise"
	"github.com/gunisup/supervisor/upgrade"
)

// Version is the supervisor's version, set at build time with
// -ldflags "-X github.com/gunisup/supervisor/daemon.Version=...".
var Version = "dev"

// Exit statuses of the supervisor.
const (
	ExitOK      = 0
	ExitFailure = 1
	ExitConfig  = 2
	// ExitDegraded: `supervisor doctor` found a feature degraded.
	ExitDegraded = 3
)

// DefaultConfig is read when -c is not given.
const DefaultConfig = "/etc/gunisup/gunisup.toml"

const usage = `usage:
  supervisor [-c FILE]          run in the foreground (systemd, container, PID 1)
  supervisor check [-c FILE]    validate the configuration: exit 0, or 2 with one line per error;
                                warns about apps relying on a feature degraded on this host
  supervisor import FILE...     print a supervisord configuration (INI) as TOML,
                                with warnings on stderr for what is not mapped
  supervisor doctor [-c FILE]   probe this host for each feature with a fallback: exit 0 when
                                all work, 3 when one is degraded (why and the fix are printed)
  supervisor version | --version
  supervisor help | --help
  supervisor upgrade-check -c FILE -state FILE
                                can this binary take over the state a running
                                supervisor wrote (its dry run before a self-upgrade)
`

// Run runs the supervisor command line. The returned error carries the exit
// status (exitcode.Error): 0 after a requested stop, 2 for a bad
// configuration, 1 for a failure to start, or an exit_with app's status.
func Run(args []string, stdout, stderr io.Writer) error {
	cmd := "run"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	if cmd == "upgrade-guard" { // started by an upgrading supervisor, with flags of its own
		return runGuard(args, stderr)
	}
	fs := flag.NewFlagSet("supervisor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cfgPath := fs.String("c", DefaultConfig, "configuration file")
	statePath := fs.String("state", "", "hand-over state file (upgrade-check)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if cmd == "help" || slices.ContainsFunc(args, isHelpFlag) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if cmd == "import" {
		return importINI(args, stdout, stderr)
	}
	if err := fs.Parse(args); err != nil {
		return exitcode.New(ExitConfig, err)
	}
	if *showVersion {
		cmd = "version"
	}
	if fs.NArg() > 0 {
		return exitcode.New(ExitConfig, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "check":
		return check(*cfgPath, stdout, stderr)
	case "doctor":
		return runDoctor(*cfgPath, flagSet(fs, "c"), stdout)
	case "upgrade-check":
		// A running supervisor's dry run of this binary before it re-executes
		// it (see Daemon.Upgrade).
		return upgradeCheck(*cfgPath, *statePath, stdout)
	case "run":
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			if cfg = configApart(*cfgPath); cfg == nil {
				return exitcode.New(ExitConfig, err)
			}
		}
		self, err := newSelfLog()
		if err != nil {
			return exitcode.New(ExitFailure, err)
		}
		logger := newLogger(cfg.Supervisor.LogFormat, io.MultiWriter(stderr, self.Writer()))
		d := &Daemon{Config: cfg, Logger: logger, Stdout: stdout, selfLog: self}
		return d.Run(context.Background())
	}
	fmt.Fprint(stderr, usage)
	return exitcode.New(ExitConfig, fmt.Errorf("unknown command %q", cmd))
}

// isHelpFlag reports a request for the usage (-h, -help, --help), which
// prints it on stdout and exits 0 instead of failing the flag parse.
func isHelpFlag(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help"
}

// Daemon is one running supervisor.
type Daemon struct {
	Config *config.Config
	Logger *slog.Logger
	Stdout io.Writer

	// selfLog keeps the supervisor's recent log lines (`supctl log`); nil
	// when Logger writes elsewhere only.
	selfLog *selfLog
	started time.Time
	manager *supervise.Manager
	// routes holds the apps' route metrics, registered on the metrics.
	routes   *apm.Set
	reaper   *proc.Reaper
	notifier *sdnotify.Notifier
	bridges  map[string]*metrics.StatsdBridge
	// bridgesMu guards bridges once the Manager runs (an update adds some).
	bridgesMu sync.Mutex
	// inboxes are the apps' error inboxes (the errors verb and metrics).
	inboxes  inboxes
	upgrades int
	// lastUpgrade describes the last self-upgrade ("" if none).
	lastUpgrade string
	exe         string
	upgradeMu   sync.Mutex
	// httpAddr is the bound metrics address ("" if none); written once
	// before the control server starts, read by info.
	httpAddr string
	// prevRun is a dead predecessor's run state (nil: none), the base of
	// this supervisor's first one.
	prevRun *recovery.RunState
	// degraded is what the doctor found degraded at start (see probeHost).
	degraded []control.Feature
	// bpfWhy is the doctor's verdict on BPF steering at start ("" when it
	// works; see bpfVerdict), which the Manager's listeners follow.
	bpfWhy string
}

// lateSource lets metrics be built before the manager it reads.
type lateSource struct {
	mu sync.Mutex
	m  *supervise.Manager
	// inboxes are the apps' error inboxes (see ErrorCounts).
	inboxes *inboxes
}

func (s *lateSource) Snapshots() []status.AppSnapshot {
	s.mu.Lock()
	m := s.m
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Snapshots()
}

func (s *lateSource) set(m *supervise.Manager) {
	s.mu.Lock()
	s.m = m
	s.mu.Unlock()
}

// running is what setup started: the channels the loop waits on and the
// clean-ups Run performs, last started first, when it returns.
type running struct {
	// ctx ends when Run returns; the apps, the metrics listener and
	// upgrades run under it.
	ctx  context.Context
	sigs chan os.Signal
	// gate drops repeated signals (see signalGate); loop and shutdown,
	// which run one after the other, share it.
	gate signalGate
	// ctrlDone receives the control server's Serve result.
	ctrlDone chan error
	// httpDone receives the metrics listener's result; nil without one.
	httpDone chan error
	notify   *notifyState
	cleanups []func()
}

// onClose registers f to run when Run returns.
func (r *running) onClose(f func()) { r.cleanups = append(r.cleanups, f) }

func (r *running) close() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
}

// Run starts every app and supervises until a terminating signal, the
// exit_with app's exit or the end of ctx, then stops everything within
// shutdown_timeout. It returns nil after a requested stop, or an
// exitcode.Error: 1 for a failure to start or a lost control socket, 2 for
// sockets the configuration names but cannot have, the exit_with app's
// status, or 128+N when a second stop signal N (not a repeat within
// repeatWindow of the first) cut the stop short.
func (d *Daemon) Run(ctx context.Context) error {
	r := &running{}
	defer r.close()
	if err := d.setup(ctx, r); err != nil {
		return err
	}
	exitCode, err := d.loop(ctx, r)
	if err != nil {
		return err
	}
	return d.shutdown(r, exitCode)
}

// setup takes over a previous image's state (or systemd's), traps signals,
// builds metrics and the Manager, opens the control and metrics listeners
// and starts the apps. Everything it starts is registered on r.
func (d *Daemon) setup(ctx context.Context, r *running) error {
	hand, stateFD, inherited, err := d.begin()
	if err != nil {
		return err
	}
	r.notify = &notifyState{notifier: d.notifier}
	d.trapSignals(r)
	d.reaper = proc.NewReaper()
	r.onClose(d.reaper.Close)
	src := &lateSource{inboxes: &d.inboxes}
	met := metrics.New(src, metrics.Options{Logger: d.Logger, Version: Version})
	d.routes = apm.NewSet(apm.Options{})
	met.Registry().MustRegister(d.routes)
	d.probeHost(met)
	if err := d.openBridges(r, met, hand, stateFD); err != nil {
		return err
	}
	ctl, err := d.listenControl(r)
	if err != nil {
		if hand != nil {
			return d.takeoverFailed(hand, stateFD, err)
		}
		return exitcode.New(ExitFailure, err)
	}
	cgroups := d.openCgroups(r)
	m, orphans, err := d.newManager(met, hand, stateFD, inherited, cgroups)
	if err != nil {
		return err
	}
	d.manager = m
	src.set(m)
	r.onClose(m.CloseSockets)
	httpLn := d.listenHTTP()
	d.serveControl(r, ctl, met)
	runCtx, cancel := context.WithCancel(ctx)
	r.onClose(cancel)
	r.ctx = runCtx
	go d.routes.Run(runCtx)
	if httpLn != nil {
		d.serveHTTP(r, httpLn, met)
	}
	d.Logger.Info("supervisor starting", "version", Version, "pid", os.Getpid(), "config", d.Config.Path, "apps", len(d.Config.Apps), "pid1", os.Getpid() == 1)
	d.recordRun()
	m.Start(runCtx)
	d.startRecovery(r, orphans)
	return nil
}

// begin finds the binary to upgrade to later and the hand-over state of a
// previous image (nil when this is the first), and sets up systemd
// notification: restored from the hand-over, or read (and removed) from the
// environment together with socket-activated descriptors.
func (d *Daemon) begin() (*upgrade.State, int, []sdnotify.Inherited, error) {
	d.started = time.Now()
	exe, err := upgrade.Executable()
	if err != nil {
		return nil, 0, nil, exitcode.New(ExitFailure, err)
	}
	d.exe = exe
	hand, stateFD, err := upgrade.ReadState()
	if err != nil {
		return nil, 0, nil, exitcode.New(ExitFailure, fmt.Errorf("self-upgrade: %w", err))
	}
	if hand != nil {
		if hand.Exe != "" {
			// The next upgrade runs the binary installed where the first
			// image was started from, never RUN_DIR/supervisor.previous.
			d.exe = hand.Exe
		}
		d.started = hand.Started
		d.notifier = sdnotify.Restore(hand.NotifySocket, hand.Watchdog)
		return hand, stateFD, nil, nil
	}
	if err := d.restartedByGuard(); err != nil {
		return nil, 0, nil, exitcode.New(ExitFailure, err)
	}
	// Children must never inherit systemd's protocol variables or fds.
	if d.notifier, err = sdnotify.FromEnv(true); err != nil {
		return nil, 0, nil, exitcode.New(ExitFailure, fmt.Errorf("systemd notify: %w", err))
	}
	inherited, err := sdnotify.ListenFDs(true)
	if err != nil {
		return nil, 0, nil, exitcode.New(ExitFailure, fmt.Errorf("systemd socket activation: %w", err))
	}
	return nil, 0, inherited, nil
}

// trapSignals routes the supervisor's signals to r.sigs, before anything is
// started: as PID 1 the kernel drops any signal without a handler. Outside
// PID 1 the supervisor becomes its descendants' subreaper.
func (d *Daemon) trapSignals(r *running) {
	r.sigs = make(chan os.Signal, 16)
	signal.Notify(r.sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	r.onClose(func() { signal.Stop(r.sigs) })
	signal.Ignore(syscall.SIGPIPE)
	if os.Getpid() != 1 {
		if err := proc.SetChildSubreaper(); err != nil {
			d.Logger.Warn("orphans will re-parent to init", "err", err)
		}
	}
}

// openBridges opens each app's statsd bridge: adopted from the hand-over,
// or new for a gunicorn app with statsd on.
func (d *Daemon) openBridges(r *running, met *metrics.Metrics, hand *upgrade.State, stateFD int) error {
	d.bridges = map[string]*metrics.StatsdBridge{}
	r.onClose(func() {
		for _, b := range d.bridges {
			_ = b.Close() // idempotent; errors at exit change nothing
		}
	})
	for _, app := range d.Config.Apps {
		if fd, ok := hand.StatsdFD(app.Name); ok {
			b, err := metrics.NewStatsdBridgeFromFD(app.Name, met, fd)
			if err != nil {
				return d.takeoverFailed(hand, stateFD, err)
			}
			d.bridges[app.Name] = b
			continue
		}
		if app.Kind == config.KindGunicorn && app.Statsd {
			b, err := metrics.NewStatsdBridge(app.Name, met)
			if err != nil {
				return exitcode.New(ExitFailure, fmt.Errorf("app %s: statsd bridge: %w", app.Name, err))
			}
			d.bridges[app.Name] = b
		}
	}
	return nil
}

// openBridge opens app's statsd bridge unless it has one (an app that an
// update adds).
func (d *Daemon) openBridge(app string, met *metrics.Metrics) error {
	d.bridgesMu.Lock()
	defer d.bridgesMu.Unlock()
	if d.bridges[app] != nil {
		return nil
	}
	b, err := metrics.NewStatsdBridge(app, met)
	if err != nil {
		return err
	}
	d.bridges[app] = b
	return nil
}

// newManager builds the Manager on the held sockets (systemd's, those of a
// previous image, or those a dead predecessor's orphans hold: see
// recoverSockets, whose orphans it returns) and records how a hand-over
// went.
func (d *Daemon) newManager(met *metrics.Metrics, hand *upgrade.State, stateFD int, inherited []sdnotify.Inherited, cgroups *proc.Cgroups) (*supervise.Manager, *recovery.Orphans, error) {
	held, err := systemdSockets(d.Config, inherited)
	if err != nil {
		return nil, nil, exitcode.New(ExitConfig, err)
	}
	var orphans *recovery.Orphans
	if hand == nil {
		if orphans, err = d.recoverSockets(held); err != nil {
			return nil, nil, errors.Join(err, closeHeld(held))
		}
	}
	opts := supervise.Options{
		Logger:   d.Logger,
		Stdout:   d.Stdout,
		Observer: met,
		StatsdAddr: func(app string) string {
			d.bridgesMu.Lock()
			defer d.bridgesMu.Unlock()
			if b := d.bridges[app]; b != nil {
				return b.Addr()
			}
			return ""
		},
		OpenStatsd: func(app string) error { return d.openBridge(app, met) },
		WatchLog:   d.inboxes.watch,
		ErrorInbox: d.inboxes.get,
		BPFWhy:     func() string { return d.bpfWhy },
		Sockets:    held,
		Cgroups:    cgroups,
		Orphans:    orphans,
		Routes:     d.routes,
	}
	if hand != nil {
		opts.Restore = hand.Manager
	}
	m, err := supervise.NewManager(d.Config, d.reaper, opts)
	if err != nil {
		if hand != nil {
			return nil, nil, d.takeoverFailed(hand, stateFD, err)
		}
		return nil, nil, exitcode.New(ExitFailure, err)
	}
	if hand != nil {
		unix.Close(stateFD)
		d.tookOver(hand)
	}
	return m, orphans, nil
}

// tookOver counts a successful self-upgrade, or records the rollback that
// brought this (previous) binary back.
func (d *Daemon) tookOver(hand *upgrade.State) {
	d.upgrades = hand.Upgrades
	if hand.Fallback != "" {
		d.lastUpgrade = "rolled back: " + hand.Fallback
		d.Logger.Error("self-upgrade rolled back: this is the previous binary again", "reason", hand.Fallback)
		return
	}
	d.upgrades++
	d.lastUpgrade = fmt.Sprintf("ok: %s -> %s", hand.FromVersion, Version)
	d.Logger.Info("self-upgrade: took over running apps", "from", hand.FromVersion, "to", Version, "pid", os.Getpid())
}

// listenHTTP binds the metrics listener before the control server starts,
// so that info() reports the real address (http = "127.0.0.1:0" is read
// back from `supctl status --json`). It returns nil when the endpoint is
// disabled or cannot be bound; a bind failure is logged and the supervisor
// runs without it.
func (d *Daemon) listenHTTP() net.Listener {
	addr := d.Config.Supervisor.HTTP
	if addr == "" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		d.Logger.Error("metrics listener failed", "err", fmt.Errorf("metrics: listen on %q: %w", addr, err))
		return nil
	}
	d.httpAddr = l.Addr().String()
	d.Logger.Info("metrics listening", "addr", d.httpAddr)
	return l
}

// listenControl opens the control socket before anything is taken over or
// started, so that a socket the supervisor cannot have stops a fresh start
// before any app runs, and makes a self-upgrade fall back (takeoverFailed)
// before it adopted anything. The server is closed when Run returns.
func (d *Daemon) listenControl(r *running) (*control.Server, error) {
	sup := d.Config.Supervisor
	srv := &control.Server{Upgrader: upgrader{d}, Info: d.info, Logger: d.Logger}
	if d.selfLog != nil {
		srv.SupervisorLog = d.selfLog
	}
	if err := srv.Listen(sup.ControlSocket, controlGID(sup)); err != nil {
		return nil, err
	}
	r.onClose(func() { _ = srv.Close() }) // exiting: a close error changes nothing
	return srv, nil
}

// serveControl serves srv (from listenControl) on the Manager until Run
// returns; GET /v1/metrics serves met's registry, GET /v1/top its series
// for supctl top (metrics.Metrics.TopHandler).
func (d *Daemon) serveControl(r *running, srv *control.Server, met *metrics.Metrics) {
	b := backend{d.manager}
	srv.Backend, srv.Logs, srv.Resolver = b, b, b
	srv.Bulk, srv.Signaller, srv.Rollbacker = b, b, b
	srv.Errors = errorInbox{&d.inboxes}
	srv.Metrics = met.ScrapeHandler()
	srv.Top = met.TopHandler(d.manager, d.routes.Top())
	srv.Config = configurer{d.manager, d.pruneRemoved}
	r.ctrlDone = make(chan error, 1)
	go func() { r.ctrlDone <- srv.Serve() }()
}

// serveHTTP serves /metrics, /healthz and /readyz on ln until r.ctx ends.
func (d *Daemon) serveHTTP(r *running, ln net.Listener, met *metrics.Metrics) {
	live := func() error {
		ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
		defer cancel()
		return d.manager.Ping(ctx)
	}
	r.httpDone = make(chan error, 1)
	go func() {
		r.httpDone <- metrics.ServeListener(r.ctx, ln, d.Config.Supervisor.HTTPWebConfig, met.Handler(live), d.Logger)
	}()
}

// loop supervises until a stop is due and returns the exit status to stop
// with: ExitOK for a stop signal or the end of ctx, the exit_with app's
// status. The error is a lost control socket (exit 1).
func (d *Daemon) loop(ctx context.Context, r *running) (int, error) {
	m := d.manager
	watchdog, stopWatchdog := r.notify.watchdogTicker()
	defer stopWatchdog()
	d.appsChanged(r.notify)
	for {
		select {
		case <-ctx.Done():
			d.Logger.Info("stopping", "reason", context.Cause(ctx))
			return ExitOK, nil
		case sig := <-r.sigs:
			if d.received(r, sig) && d.onSignal(r.ctx, sig) {
				return ExitOK, nil
			}
		case <-m.Changes():
			d.appsChanged(r.notify)
		case ex := <-m.Exits():
			if with := d.Config.Supervisor.ExitWith; with != "" && ex.App == with {
				code := ex.Exit.ShellCode()
				d.Logger.Info("exit_with app exited; stopping", "app", ex.App, "status", ex.Exit.String(), "exit_code", code)
				return code, nil
			}
		case <-watchdog:
			d.pingWatchdog(r)
		case err := <-r.ctrlDone:
			return ExitFailure, exitcode.New(ExitFailure, fmt.Errorf("control socket: %w", err))
		case err := <-r.httpDone:
			if err != nil {
				d.Logger.Error("metrics listener failed", "err", err)
			}
			r.httpDone = nil
		}
	}
}

// received reports whether sig is to be acted on: not a repeat, within
// repeatWindow, of a signal already acted on (which it logs).
func (d *Daemon) received(r *running, sig os.Signal) bool {
	if r.gate.pass(sig, time.Now()) {
		return true
	}
	d.Logger.Info("signal repeated within "+repeatWindow.String()+": counted once", "signal", sig.String())
	return false
}

// onSignal acts on a signal received while supervising and reports whether
// it asks for a stop (TERM, INT, QUIT).
func (d *Daemon) onSignal(ctx context.Context, sig os.Signal) bool {
	if isStop(sig) {
		d.Logger.Info("stopping", "signal", sig.String())
		return true
	}
	switch sig {
	case syscall.SIGHUP:
		d.Logger.Info("SIGHUP: applying the configuration file")
		go func() {
			err := update(ctx, d.manager, nil, func(msg string) { d.Logger.Info("update", "phase", msg) })
			if err != nil {
				d.Logger.Error("SIGHUP: update failed", "err", err)
			}
		}()
	case syscall.SIGUSR1:
		d.Logger.Info("SIGUSR1: reopening every app's log")
		if err := d.manager.ReopenLogs(); err != nil {
			d.Logger.Error("SIGUSR1: reopen", "err", err)
		}
	case syscall.SIGUSR2:
		d.Logger.Info("SIGUSR2: self-upgrade")
		go func() {
			err := d.Upgrade(ctx, func(msg string) { d.Logger.Info("upgrade", "phase", msg) })
			d.Logger.Error("self-upgrade failed", "err", err)
		}()
	}
	return false
}

// appsChanged tells systemd about the apps' current state.
func (d *Daemon) appsChanged(s *notifyState) {
	ready := d.manager.Readiness()
	snaps := d.manager.Snapshots()
	status := summary(snaps)
	if why := ready.Summary(); why != "" {
		status += "; " + why
	}
	first, err := s.apps(ready.Started, anyReloading(snaps), status)
	if first {
		d.Logger.Info("all required apps started", "status", status)
	}
	d.notify(err)
}

// pingWatchdog pings systemd's watchdog when every app owner answers within
// a second; otherwise it logs why and sends nothing, so that systemd's
// timeout fires if the supervisor stays stuck.
func (d *Daemon) pingWatchdog(r *running) {
	ctx, cancel := context.WithTimeout(r.ctx, time.Second)
	defer cancel()
	if err := d.manager.Ping(ctx); err != nil {
		d.Logger.Error("watchdog: not pinging systemd", "err", err)
		return
	}
	d.notify(r.notify.ping())
}

// shutdown stops every app within shutdown_timeout and returns the exit
// status: exitCode, or 128+N when a second stop signal N kills what
// remains (the apps did not stop as asked, as a shell would report it). A
// stop signal within repeatWindow of the first is the same one (ignored).
func (d *Daemon) shutdown(r *running, exitCode int) error {
	d.notify(r.notify.stopping())
	ctx, cancel := context.WithTimeout(context.Background(), d.Config.Supervisor.ShutdownTimeout)
	defer cancel()
	stopped := make(chan error, 1)
	go func() { stopped <- d.manager.Stop(ctx) }()
	for {
		select {
		case err := <-stopped:
			if err != nil {
				d.Logger.Error("stop", "err", err)
			}
			d.removePrevious()
			d.Logger.Info("supervisor stopped", "exit_code", exitCode)
			if exitCode != ExitOK {
				return exitcode.New(exitCode, nil)
			}
			return nil
		case sig := <-r.sigs:
			if d.received(r, sig) && isStop(sig) {
				d.Logger.Warn("second stop signal: killing what remains", "signal", sig.String())
				cancel()
				if exitCode == ExitOK {
					exitCode = 128 + int(sig.(syscall.Signal))
				}
			}
		}
	}
}

func (d *Daemon) notify(err error) {
	if err != nil {
		d.Logger.Warn("systemd notify", "err", err)
	}
}

func (d *Daemon) info() control.SupervisorInfo {
	return control.SupervisorInfo{PID: os.Getpid(), Version: Version, Started: d.started, Config: d.Config.Path, Upgrades: d.upgrades, LastUpgrade: d.lastUpgrade, HTTP: d.httpAddr, Degraded: d.degraded}
}

// takeoverFailed runs when this image cannot take over the previous one's
// apps: it re-executes the previous binary with the same state, so the apps
// never notice; if even that fails the supervisor exits 1.
func (d *Daemon) takeoverFailed(hand *upgrade.State, stateFD int, cause error) error {
	d.Logger.Error("self-upgrade: cannot take over; re-executing the previous binary", "err", cause)
	// The statsd sockets adopted so far were re-wrapped and their handed-over
	// descriptors closed: the fallback gets the live ones, since an exec
	// with a closed descriptor would fail and orphan every app.
	for app, b := range d.bridges {
		if _, handed := hand.Statsd[app]; !handed {
			continue
		}
		fd, err := b.FD()
		if err != nil {
			return exitcode.New(ExitFailure, fmt.Errorf("self-upgrade: %w; no fallback: %w", cause, err))
		}
		hand.Statsd[app] = fd
	}
	err := upgrade.Fallback(hand, stateFD, Version, cause)
	return exitcode.New(ExitFailure, fmt.Errorf("self-upgrade: %w", err))
}

// anyReloading reports whether a reload of some app is in progress.
func anyReloading(apps []status.AppSnapshot) bool {
	for _, a := range apps {
		if a.Reloading {
			return true
		}
	}
	return false
}

// summary is the one-line STATUS= for systemd.
func summary(apps []status.AppSnapshot) string {
	counts := map[string]int{}
	for _, a := range apps {
		counts[a.State.String()]++
	}
	var parts []string
	for _, s := range status.States {
		if n := counts[s.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	return "apps: " + strings.Join(parts, ", ")
}

// systemdSockets opens the listeners of every app that has `systemd:NAME`
// ones: those from the sockets systemd passed, the others bound (see
// listen.OpenApp). On error it closes everything it opened.
func systemdSockets(cfg *config.Config, inherited []sdnotify.Inherited) (map[string][]*listen.Socket, error) {
	lookup := func(name string) (int, error) {
		in, err := sdnotify.Lookup(inherited, name)
		return in.FD, err
	}
	out := map[string][]*listen.Socket{}
	for _, app := range cfg.Apps {
		if !listen.HasSystemd(app) {
			continue
		}
		socks, err := listen.OpenApp(app, lookup)
		if err != nil {
			return nil, errors.Join(err, closeHeld(out))
		}
		out[app.Name] = socks
	}
	return out, nil
}

// controlGID is the control socket's group, resolved by config (-1: none).
func controlGID(sup config.Supervisor) int {
	if sup.ControlGroup == "" {
		return -1
	}
	return sup.ControlGID
}

// closeHeld closes every socket of held and joins their errors.
func closeHeld(held map[string][]*listen.Socket) error {
	var errs []error
	for _, socks := range held {
		errs = append(errs, listen.CloseAll(socks))
	}
	return errors.Join(errs...)
}
