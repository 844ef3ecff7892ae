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
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/metrics"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/sdnotify"
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
)

// DefaultConfig is read when -c is not given.
const DefaultConfig = "/etc/supervisor/supervisor.toml"

const usage = `usage:
  supervisor [-c FILE]          run in the foreground (systemd, container, PID 1)
  supervisor check [-c FILE]    validate the configuration: exit 0, or 2 with one line per error
  supervisor version
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
	fs := flag.NewFlagSet("supervisor", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	cfgPath := fs.String("c", DefaultConfig, "configuration file")
	statePath := fs.String("state", "", "hand-over state file (upgrade-check)")
	if err := fs.Parse(args); err != nil {
		return exitcode.New(ExitConfig, err)
	}
	if fs.NArg() > 0 {
		return exitcode.New(ExitConfig, fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	switch cmd {
	case "version":
		fmt.Fprintln(stdout, versionLine())
		return nil
	case "check":
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return exitcode.New(ExitConfig, err)
		}
		fmt.Fprintf(stdout, "%s: ok (%d apps)\n", cfg.Path, len(cfg.Apps))
		return nil
	case "upgrade-check":
		// A running supervisor's dry run of this binary before it re-executes
		// it (see Daemon.Upgrade).
		return upgradeCheck(*cfgPath, *statePath, stdout)
	case "run":
		cfg, err := config.Load(*cfgPath)
		if err != nil {
			return exitcode.New(ExitConfig, err)
		}
		logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		d := &Daemon{Config: cfg, Logger: logger, Stdout: stdout}
		return d.Run(context.Background())
	}
	fmt.Fprint(stderr, usage)
	return exitcode.New(ExitConfig, fmt.Errorf("unknown command %q", cmd))
}

// Daemon is one running supervisor.
type Daemon struct {
	Config *config.Config
	Logger *slog.Logger
	Stdout io.Writer

	started  time.Time
	manager  *supervise.Manager
	reaper   *supervise.Reaper
	notifier *sdnotify.Notifier
	bridges  map[string]*metrics.StatsdBridge
	upgrades int
	// lastUpgrade describes the last self-upgrade ("" if none).
	lastUpgrade string
	exe         string
	upgradeMu   sync.Mutex
	// httpAddr is the bound metrics address ("" if none); written once
	// before the control server starts, read by info.
	httpAddr string
}

// lateSource lets metrics be built before the manager it reads.
type lateSource struct {
	mu sync.Mutex
	m  *supervise.Manager
}

func (s *lateSource) Snapshots() []supervise.AppSnapshot {
	s.mu.Lock()
	m := s.m
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.Snapshots()
}

// Run starts every app and supervises until a terminating signal (or the
// exit_with app's exit), then stops everything within shutdown_timeout.
func (d *Daemon) Run(ctx context.Context) error {
	cfg := d.Config
	d.started = time.Now()
	pid1 := os.Getpid() == 1
	exe, err := upgrade.Executable()
	if err != nil {
		return exitcode.New(ExitFailure, err)
	}
	d.exe = exe
	// A re-executed image (self-upgrade) takes over the previous one's state.
	hand, stateFD, err := upgrade.ReadState()
	if err != nil {
		return exitcode.New(ExitFailure, fmt.Errorf("self-upgrade: %w", err))
	}
	if hand != nil && hand.Exe != "" {
		// The next upgrade runs the binary installed where the first image
		// was started from, not this image's own path: after a rollback that
		// is RUN_DIR/supervisor.previous, which would never pick up a new
		// version again (found by test/e2e/upgrade).
		d.exe = hand.Exe
	}
	var notifier *sdnotify.Notifier
	var inherited []sdnotify.Inherited
	if hand != nil {
		d.started = hand.Started
		notifier = sdnotify.Restore(hand.NotifySocket, hand.Watchdog)
	} else {
		// Children must never inherit systemd's protocol variables or fds.
		notifier, err = sdnotify.FromEnv(true)
		if err != nil {
			return exitcode.New(ExitFailure, fmt.Errorf("systemd notify: %w", err))
		}
		inherited, err = sdnotify.ListenFDs(true)
		if err != nil {
			return exitcode.New(ExitFailure, fmt.Errorf("systemd socket activation: %w", err))
		}
	}
	d.notifier = notifier
	// Signals first: as PID 1 the kernel drops any signal without a handler.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	defer signal.Stop(sigs)
	signal.Ignore(syscall.SIGPIPE)
	if !pid1 {
		if err := proc.SetChildSubreaper(); err != nil {
			d.Logger.Warn("orphans will re-parent to init", "err", err)
		}
	}
	d.reaper = proc.NewReaper()
	defer d.reaper.Close()

	src := &lateSource{}
	met := metrics.New(src, metrics.Options{Logger: d.Logger})
	d.bridges = map[string]*metrics.StatsdBridge{}
	defer func() {
		for _, b := range d.bridges {
			_ = b.Close() // idempotent; errors at exit change nothing
		}
	}()
	for _, app := range cfg.Apps {
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
	held, err := systemdSockets(cfg, inherited)
	if err != nil {
		return exitcode.New(ExitConfig, err)
	}
	var restore *supervise.Handover
	if hand != nil {
		restore = hand.Manager
	}
	m, err := supervise.NewManager(cfg, d.reaper, supervise.Options{
		Logger:   d.Logger,
		Sink:     &supervise.WriterSink{W: d.Stdout},
		Observer: met,
		StatsdAddr: func(app string) string {
			if b := d.bridges[app]; b != nil {
				return b.Addr()
			}
			return ""
		},
		Sockets: held,
		Restore: restore,
	})
	if err != nil {
		if hand != nil {
			return d.takeoverFailed(hand, stateFD, err)
		}
		return exitcode.New(ExitFailure, err)
	}
	if hand != nil {
		unix.Close(stateFD)
		d.upgrades = hand.Upgrades
		if hand.Fallback != "" {
			d.lastUpgrade = "rolled back: " + hand.Fallback
			d.Logger.Error("self-upgrade rolled back: this is the previous binary again", "reason", hand.Fallback)
		} else {
			d.upgrades++
			d.lastUpgrade = fmt.Sprintf("ok: %s -> %s", hand.FromVersion, Version)
			d.Logger.Info("self-upgrade: took over running apps", "from", hand.FromVersion, "to", Version, "pid", os.Getpid())
		}
	}
	d.manager = m
	src.mu.Lock()
	src.m = m
	src.mu.Unlock()
	defer m.CloseSockets()

	// The metrics listener is bound here, before the control server starts,
	// so that info() reports the real address (tests and tools use
	// http = "127.0.0.1:0" and read it from `supctl status --json`). As
	// before, a bind failure is logged and the supervisor runs without it.
	var httpLn net.Listener
	if cfg.Supervisor.HTTP != "" {
		l, err := net.Listen("tcp", cfg.Supervisor.HTTP)
		if err != nil {
			d.Logger.Error("metrics listener failed", "err", fmt.Errorf("metrics: listen on %q: %w", cfg.Supervisor.HTTP, err))
		} else {
			httpLn = l
			d.httpAddr = l.Addr().String()
			d.Logger.Info("metrics listening", "addr", d.httpAddr)
		}
	}
	srv := &control.Server{Backend: m, Upgrader: d, Info: d.info, Logger: d.Logger}
	if err := srv.Listen(cfg.Supervisor.ControlSocket, controlGID(cfg)); err != nil {
		if httpLn != nil {
			_ = httpLn.Close() // exiting anyway
		}
		return exitcode.New(ExitFailure, err)
	}
	ctrlDone := make(chan error, 1)
	go func() { ctrlDone <- srv.Serve() }()
	defer srv.Close()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	httpDone := make(chan error, 1)
	if httpLn != nil {
		live := func() error {
			pctx, pcancel := context.WithTimeout(runCtx, 2*time.Second)
			defer pcancel()
			return m.Ping(pctx)
		}
		go func() {
			httpDone <- metrics.ServeListener(runCtx, httpLn, cfg.Supervisor.HTTPWebConfig, met.Handler(live), d.Logger)
		}()
	}

	d.Logger.Info("supervisor starting", "version", Version, "pid", os.Getpid(), "config", cfg.Path, "apps", len(cfg.Apps), "pid1", pid1)
	m.Start(runCtx)

	var watchdog <-chan time.Time
	if iv, ok := notifier.WatchdogInterval(); ok {
		t := time.NewTicker(iv)
		defer t.Stop()
		watchdog = t.C
	}
	ready := false
	// reloading is true between the RELOADING=1 sent when an app reload
	// begins after start-up and the READY=1 sent when no reload runs any more
	// (the pair systemd's Type=notify-reload requires; Type=notify accepts it).
	reloading := false
	exitCode := ExitOK
	update := func() {
		ok, bad := m.Ready()
		snaps := m.Snapshots()
		status := summary(snaps)
		if ready {
			now := anyReloading(snaps)
			switch {
			case now && !reloading:
				reloading = true
				d.notify(notifier.Reloading())
			case !now && reloading:
				reloading = false
				d.notify(notifier.Ready(status))
				return
			}
		}
		if ok && !ready {
			ready = true
			d.Logger.Info("all apps ready")
			d.notify(notifier.Ready(status))
			return
		}
		_ = bad
		d.notify(notifier.Status(status))
	}
	update()
loop:
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT:
				d.Logger.Info("stopping", "signal", sig.String())
				break loop
			case syscall.SIGHUP:
				d.Logger.Warn("SIGHUP: live configuration reload is not implemented yet; restart the supervisor to apply a new configuration")
			case syscall.SIGUSR1:
				d.Logger.Info("SIGUSR1: nothing to reopen (logs go to stdout)")
			case syscall.SIGUSR2:
				d.Logger.Info("SIGUSR2: self-upgrade")
				go func() {
					err := d.Upgrade(runCtx, func(msg string) { d.Logger.Info("upgrade", "phase", msg) })
					d.Logger.Error("self-upgrade failed", "err", err)
				}()
			}
		case <-m.Changes():
			update()
		case ex := <-m.Exits():
			if cfg.Supervisor.ExitWith != "" && ex.App == cfg.Supervisor.ExitWith {
				exitCode = ex.Exit.ShellCode()
				d.Logger.Info("exit_with app exited; stopping", "app", ex.App, "status", ex.Exit.String(), "exit_code", exitCode)
				break loop
			}
		case <-watchdog:
			pctx, pcancel := context.WithTimeout(runCtx, time.Second)
			if err := m.Ping(pctx); err == nil {
				d.notify(notifier.Watchdog())
			} else {
				d.Logger.Error("watchdog: not pinging systemd", "err", err)
			}
			pcancel()
		case err := <-ctrlDone:
			return exitcode.New(ExitFailure, fmt.Errorf("control socket: %w", err))
		case err := <-httpDone:
			if err != nil {
				d.Logger.Error("metrics listener failed", "err", err)
			}
			httpDone = nil
		}
	}
	d.notify(notifier.Stopping())
	stopCtx, stopCancel := context.WithTimeout(context.Background(), cfg.Supervisor.ShutdownTimeout)
	defer stopCancel()
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop(stopCtx) }()
	for {
		select {
		case err := <-stopped:
			if err != nil {
				d.Logger.Error("stop", "err", err)
			}
			d.Logger.Info("supervisor stopped", "exit_code", exitCode)
			if exitCode != ExitOK {
				return exitcode.New(exitCode, nil)
			}
			return nil
		case sig := <-sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT {
				d.Logger.Warn("second stop signal: killing what remains", "signal", sig.String())
				stopCancel()
				// The apps did not stop as asked: say so in the exit status,
				// as a shell would for a process ended by that signal.
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
	return control.SupervisorInfo{PID: os.Getpid(), Version: Version, Started: d.started, Config: d.Config.Path, Upgrades: d.upgrades, LastUpgrade: d.lastUpgrade, HTTP: d.httpAddr}
}

// takeoverFailed runs when this image cannot take over the previous one's
// apps: it re-executes the previous binary with the same state, so the apps
// never notice; if even that fails the supervisor exits 1.
func (d *Daemon) takeoverFailed(hand *upgrade.State, stateFD int, cause error) error {
	d.Logger.Error("self-upgrade: cannot take over; re-executing the previous binary", "err", cause)
	// The statsd sockets adopted so far were re-wrapped and their handed-over
	// descriptors closed: hand the live ones on instead, or the fallback's
	// exec fails on a closed descriptor and the supervisor exits, orphaning
	// every app (found by test/e2e/upgrade).
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
func anyReloading(apps []supervise.AppSnapshot) bool {
	for _, a := range apps {
		if a.Reloading {
			return true
		}
	}
	return false
}

// summary is the one-line STATUS= for systemd.
func summary(apps []supervise.AppSnapshot) string {
	counts := map[string]int{}
	for _, a := range apps {
		counts[a.State.String()]++
	}
	var parts []string
	for _, s := range supervise.States {
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
			for _, opened := range out {
				err = errors.Join(err, listen.CloseAll(opened))
			}
			return nil, err
		}
		out[app.Name] = socks
	}
	return out, nil
}

// controlGID is the control socket's group, resolved by config (-1: none).
func controlGID(cfg *config.Config) int {
	if cfg.Supervisor.ControlGroup == "" {
		return -1
	}
	return cfg.Supervisor.ControlGID
}
