// Package supctl is the supctl command line: it parses arguments, talks to
// the control socket and prints results. Exit statuses (carried by
// exitcode.Error): 0 ok, 1 the operation failed (a start or restart: the
// app did not count as started), 2 usage or configuration error, 3 cannot
// connect to the supervisor; `supctl status` (and `pid TARGET`) exits 3
// when an app named is not running and 4 for an unknown app or when it
// cannot connect, as LSB status and supervisorctl do.
package supctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/reload/strategy"
)

// Exit statuses.
const (
	ExitOK        = 0
	ExitFailed    = 1
	ExitUsage     = 2
	ExitNoConnect = 3
)

// strategyChoice is the --strategy values as usage shows them: the
// registry's names, joined by "|".
var strategyChoice = strings.Join(strategy.Names(), "|")

var usage = `usage: supctl [-s SOCKET | -c CONFIG] COMMAND [ARGS]

commands (TARGET: an app, an instance base name, all, or group:NAME; several at once):
  status [TARGET...] [--json]    state, PIDs, workers, uptime, restarts, last exit, listeners
  start|stop|restart TARGET...   one line per app; start and restart wait until each app counts as started
  signal TARGET... SIG           send SIG (` + strings.Join(control.SignalNames(), " ") + `) to each app's main process
  pid [TARGET...]                the supervisor's PID, or each app's main PID
  reload TARGET... [--strategy S]        zero-downtime code swap; exit 0 once the new generation serves alone
  deploy APP RELEASE_DIR [--strategy S]  point the app's directory link at RELEASE_DIR (relative to the current directory), reload, point back on failure
  rollback APP                   steer back to the generation kept by keep_previous, or deploy the previous release
  logs [TARGET...|all] [-n 100|all] [-f] [--stderr] [--since 10m|TIME]  recent output lines (none or all: every app, by time; -f: then follow; -n 0: none)
  logs TARGET... --reopen        reopen the log file (after logrotate) and Gunicorn's own logs (USR1)
  log [-n 100] [-f]              the supervisor's own recent log lines
  top [--interval 1s] [--routes APP]  live table of every app: state, CPU, RSS, workers, queue, req/s, p99, Apdex, 5xx %, restarts;
                                 --routes APP: its slowest routes and those with the most 5xx answers
  errors [TARGET...] [-v] [--json]  exception groups from the apps' tracebacks, worker timeouts and kills
  reread                         show what update would do with the edited configuration file
  update [TARGET...]             apply the configuration file: add, remove, reload or change apps (as SIGHUP)
  upgrade                        re-execute the supervisor binary in place (same PID, apps untouched)
  version | --version            supctl's version, and the supervisor's when one answers
  completion bash|zsh|fish       print a shell completion script
  help [COMMAND] | COMMAND --help

S is a reload strategy: ` + strategyChoice + ` (default: the app's reload.strategy).
The socket is -s PATH, else the control_socket of -c CONFIG, else $SUPCTL_SOCKET, else ` + control.DefaultSocket + `.
Exit status: 0 ok, 1 operation failed, 2 usage error, 3 cannot connect;
status: 0 all named apps run, 3 some app is not running, 4 unknown app or cannot connect.
`

// Run runs supctl with args (without the program name).
func Run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("supctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // Run prints the usage: on stdout for -h, on stderr for errors
	sock := fs.String("s", "", "control socket path")
	conf := fs.String("c", "", "configuration file whose control_socket to use")
	timeout := fs.Duration("timeout", 15*time.Minute, "give up after this long")
	showVersion := fs.Bool("version", false, "print the version")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return nil
		}
		return exitcode.New(ExitUsage, err)
	}
	rest := fs.Args()
	if *showVersion {
		rest = []string{"version"}
	}
	if len(rest) == 0 {
		fmt.Fprint(stderr, usage)
		return exitcode.New(ExitUsage, errors.New("no command"))
	}
	cmd, cargs := rest[0], rest[1:]
	if cmd == "help" || cmd == "-h" || cmd == "--help" {
		return help(cargs, stdout)
	}
	if _, ok := verbHelp[cmd]; !ok {
		return unknownVerb(cmd)
	}
	if wantsHelp(cargs) {
		return help([]string{cmd}, stdout)
	}
	path, err := socketPath(*sock, *conf)
	if err != nil {
		return exitcode.New(ExitUsage, err)
	}
	c := control.NewClient(path)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	if (cmd == "logs" || cmd == "log" || cmd == "top") && !flagSet(fs, "timeout") {
		// A follow (or top) lasts until interrupted, unless a limit was asked for.
		cancel()
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	if cmd == "version" {
		versions(ctx, c, path, stdout, stderr)
		return nil
	}
	return classify(dispatch(ctx, c, cmd, cargs, stdout))
}

// dispatch runs verb cmd (a key of verbHelp other than help and version).
func dispatch(ctx context.Context, c *control.Client, cmd string, args []string, out io.Writer) error {
	switch cmd {
	case "status":
		return statusCmd(ctx, c, args, out)
	case "start", "stop", "restart":
		return act(ctx, c, cmd, args, out)
	case "signal":
		return signalCmd(ctx, c, args, out)
	case "pid":
		return pidCmd(ctx, c, args, out)
	case "reload", "deploy":
		return reloadCmd(ctx, c, cmd, args, out)
	case "rollback":
		return rollbackCmd(ctx, c, args, out)
	case "logs":
		return logsCmd(ctx, c, args, out)
	case "log":
		return supervisorLog(ctx, c, args, out)
	case "top":
		return topCmd(ctx, c, args, out)
	case "errors":
		return errorsCmd(ctx, c, args, out)
	case "upgrade":
		return upgrade(ctx, c, out)
	case "reread":
		return reread(ctx, c, args, out)
	case "update":
		return updateCmd(ctx, c, args, out)
	case "completion":
		return completion(ctx, c, args, out)
	}
	return unknownVerb(cmd)
}

// classify gives a client error its exit status.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ue *exitcode.Error
	if errors.As(err, &ue) {
		return err
	}
	var ce *control.ConnectError
	if errors.As(err, &ce) {
		return exitcode.New(ExitNoConnect, permissionHint(err))
	}
	var ae *control.APIError
	if errors.As(err, &ae) && ae.Code == control.CodeBadRequest {
		return exitcode.New(ExitUsage, err)
	}
	return exitcode.New(ExitFailed, permissionHint(err))
}

// splitFlags separates --flag value pairs from positional arguments so
// flags may follow them (`supctl status web --json`).
func splitFlags(args []string, withValue map[string]bool) (map[string]string, []string, error) {
	flags := map[string]string{}
	var pos []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") {
			pos = append(pos, a)
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		takes, known := withValue[name]
		if !known {
			return nil, nil, exitcode.New(ExitUsage, fmt.Errorf("unknown flag %s", a))
		}
		if takes && !hasVal {
			if i+1 >= len(args) {
				return nil, nil, exitcode.New(ExitUsage, fmt.Errorf("flag %s needs a value", a))
			}
			i++
			val = args[i]
		}
		flags[name] = val
	}
	return flags, pos, nil
}

// PrintDegraded writes one header line per feature the supervisor's host
// lacks (none when every feature works): its name, why and the fix.
func PrintDegraded(out io.Writer, features []control.Feature) {
	for _, f := range features {
		fmt.Fprintf(out, "degraded: %s: %s", f.Name, f.Why)
		if f.Fix != "" {
			fmt.Fprintf(out, "; fix: %s", f.Fix)
		}
		fmt.Fprintln(out)
	}
	if len(features) > 0 {
		fmt.Fprintln(out, "(supervisor doctor probes again)")
	}
}

// PrintStatus writes the human status table.
func PrintStatus(out io.Writer, apps []control.AppStatus, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "APP\tSTATE\tPID\tWORKERS\tPROCS\tUPTIME\tRESTARTS\tLAST EXIT\tGEN\tLISTEN")
	for _, a := range apps {
		state := string(a.State)
		if a.State == control.StateRunning && a.HealthChecked && !a.Healthy {
			state += " (unhealthy)"
		}
		if a.Reloading {
			state += " (reloading)"
		}
		pid, up := "-", "-"
		if a.MasterPID != 0 {
			pid = fmt.Sprint(a.MasterPID)
			up = now.Sub(a.Started).Round(time.Second).String()
		}
		last := "-"
		if a.LastExit != nil {
			last = a.LastExit.String()
		}
		var ls []string
		for _, l := range a.Listeners {
			if l.Closed {
				ls = append(ls, l.Address+" (closed)")
				continue
			}
			if l.Steering != "" {
				ls = append(ls, l.Address+" ("+l.Steering+")")
				continue
			}
			ls = append(ls, l.Address)
		}
		workers := "-" // a process app has no workers of its own
		if a.Kind != "process" {
			workers = fmt.Sprint(len(a.WorkerPIDs))
			if a.WorkersTarget > 0 {
				workers += "/" + fmt.Sprint(a.WorkersTarget) // live/target of a workers range
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%d\t%s\t%d\t%s\n", a.Name, state, pid, workers, a.Processes, up, a.Restarts, last, a.Generation, strings.Join(ls, ","))
	}
	_ = tw.Flush() // writes to a terminal or pipe; nothing to recover
	for _, a := range apps {
		if a.Message != "" {
			fmt.Fprintf(out, "%s: %s\n", a.Name, a.Message)
		}
		if a.LastReload != nil {
			r := a.LastReload
			fmt.Fprintf(out, "%s: last reload %s (%s) %s ago, took %s", a.Name, r.Result, r.Strategy, now.Sub(r.Started).Round(time.Second), r.Duration.Round(time.Millisecond))
			if r.Reason != "" {
				fmt.Fprintf(out, ": %s", r.Reason)
			}
			if strategy.Strategy(r.Strategy).ReExec() && steered(a.Listeners) {
				fmt.Fprintf(out, "; not traffic-gated: a %s master inherits the serving sockets, its workers answered clients once booted", r.Strategy)
			}
			fmt.Fprintln(out)
		}
		if a.Release != "" {
			fmt.Fprintf(out, "%s: release %s\n", a.Name, a.Release)
		}
		if a.Comparison != "" {
			fmt.Fprintf(out, "%s: %s\n", a.Name, a.Comparison)
		}
		if k := a.Kept; k != nil {
			fmt.Fprintf(out, "%s: kept for rollback: generation %d (pid %d, %s), %s left\n", a.Name, k.Generation, k.PID, k.Release, k.Until.Sub(now).Round(time.Second))
		}
		if a.Kind == "gunicorn" && !a.StatsdBridge {
			fmt.Fprintf(out, "%s: request metrics off (the app's own --statsd-host is used)\n", a.Name)
		}
		printTraceback(out, a)
	}
}

// steered reports whether any listener gives generations their own sockets
// (steering other than "shared").
func steered(ls []control.Listener) bool {
	for _, l := range ls {
		if l.Steering != "" && l.Steering != "shared" {
			return true
		}
	}
	return false
}

func act(ctx context.Context, c *control.Client, verb string, args []string, out io.Writer) error {
	if len(args) == 0 {
		return exitcode.New(ExitUsage, fmt.Errorf("%s needs an app, all, or group:NAME", verb))
	}
	return actMany(ctx, c, verb, args, out)
}

func reloadCmd(ctx context.Context, c *control.Client, verb string, args []string, out io.Writer) error {
	flags, pos, err := splitFlags(args, map[string]bool{"strategy": true, "canary": true, "for": true})
	if err != nil {
		return err
	}
	can, err := canaryFlags(flags)
	if err != nil {
		return exitcode.New(ExitUsage, fmt.Errorf("%s: %w", verb, err))
	}
	if verb == "reload" {
		if len(pos) == 0 {
			return exitcode.New(ExitUsage, errors.New("usage: supctl reload TARGET... [--strategy "+strategyChoice+"] [--canary 10%[,50%] [--for 60s]]"))
		}
		names, err := resolveTargets(ctx, c, pos)
		if err != nil {
			return err
		}
		var errs []error
		for _, n := range names {
			errs = append(errs, reloadOne(ctx, c, verb, n, flags["strategy"], "", can, out))
		}
		return errors.Join(errs...)
	}
	if len(pos) != 2 {
		return exitcode.New(ExitUsage, errors.New("usage: supctl deploy APP RELEASE_DIR [--strategy "+strategyChoice+"] [--canary 10%[,50%] [--for 60s]]"))
	}
	// The supervisor runs elsewhere: a relative release is the caller's.
	release, err := filepath.Abs(pos[1])
	if err != nil {
		return exitcode.New(ExitUsage, fmt.Errorf("deploy: release directory %q: %w", pos[1], err))
	}
	return reloadOne(ctx, c, verb, pos[0], flags["strategy"], release, can, out)
}

// rollbackCmd rolls one app back, printing each phase; exit status as deploy's.
func rollbackCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	if len(args) != 1 || strings.HasPrefix(args[0], "-") {
		return exitcode.New(ExitUsage, errors.New("usage: supctl rollback APP"))
	}
	start := time.Now()
	ev, err := c.Rollback(ctx, args[0], func(e control.Event) {
		fmt.Fprintf(out, "[%6.2fs] %s\n", e.Time.Sub(start).Seconds(), e.Phase)
	})
	if err != nil {
		return err
	}
	return finish(out, "rollback", args[0], ev)
}

// reloadOne reloads (release "") or deploys app, printing each phase.
func reloadOne(ctx context.Context, c *control.Client, verb, app, strategy, release string, can canaryFlag, out io.Writer) error {
	start := time.Now()
	ev, err := c.ReloadCanary(ctx, app, strategy, release, can.shares, can.every, func(e control.Event) {
		fmt.Fprintf(out, "[%6.2fs] %s\n", e.Time.Sub(start).Seconds(), e.Phase)
	})
	if err != nil {
		return err
	}
	return finish(out, verb, app, ev)
}

func finish(out io.Writer, verb, what string, ev control.Event) error {
	if ev.OK {
		fmt.Fprintf(out, "%s %s: ok in %s\n", verb, what, ev.Duration.Round(time.Millisecond))
		return nil
	}
	for _, l := range ev.Tail {
		fmt.Fprintf(out, "  | %s\n", l)
	}
	err := fmt.Errorf("%s %s: %s: %s", verb, what, ev.Result, ev.Error)
	if strings.Contains(ev.Error, strings.ReplaceAll(ev.Result, "_", " ")) {
		err = fmt.Errorf("%s %s: %s", verb, what, ev.Error) // the error names the result
	}
	if ev.Code == control.CodeBadRequest {
		return exitcode.New(ExitUsage, err)
	}
	return exitcode.New(ExitFailed, err)
}

// upgrade asks for a self-upgrade. A successful one replaces the
// supervisor's image, which closes this connection without a final event:
// supctl then reconnects and confirms from the supervisor's own status.
// Where it can watch the supervisor's process (same PID namespace), a
// supervisor that dies after re-executing is reported at once, and supctl
// waits restartWait more for one started again (by the upgrade guard or
// systemd) to answer.
func upgrade(ctx context.Context, c *control.Client, out io.Writer) error {
	before, err := c.Status(ctx, "")
	if err != nil {
		return err
	}
	watch := watchServer(ctx, c)
	if watch != nil {
		defer watch.Close()
	}
	start := time.Now()
	ev, err := c.Upgrade(ctx, func(e control.Event) {
		fmt.Fprintf(out, "[%6.2fs] %s\n", e.Time.Sub(start).Seconds(), e.Phase)
	})
	if err == nil {
		return finish(out, "upgrade", "supervisor", ev)
	}
	var ce *control.ConnectError
	if !errors.As(err, &ce) {
		return err
	}
	return awaitUpgraded(ctx, c, out, before.Supervisor, watch, start)
}

// restartWait is how long supctl waits for a supervisor to answer after the
// one it upgraded died.
const restartWait = 15 * time.Second

// watchServer watches the process serving c's socket; nil when it cannot
// (another PID namespace).
func watchServer(ctx context.Context, c *control.Client) *control.PidWatch {
	pid, err := c.ServerPID(ctx)
	if err != nil {
		return nil
	}
	w, err := control.WatchPID(pid)
	if err != nil {
		return nil
	}
	return w
}

// awaitUpgraded polls the status until a supervisor answers with another
// upgrade count or last upgrade than b: 0 for an upgrade, exit 1 for a
// rollback (in place, or a previous binary started again after the new
// one died). It gives up 60 s after start, or restartWait after watch saw
// the upgraded supervisor die.
func awaitUpgraded(ctx context.Context, c *control.Client, out io.Writer, b control.SupervisorInfo, watch *control.PidWatch, start time.Time) error {
	deadline := time.Now().Add(60 * time.Second)
	died := false
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range tick.C {
		st, err := c.Status(ctx, "")
		if err == nil && (st.Supervisor.Upgrades != b.Upgrades || st.Supervisor.LastUpgrade != b.LastUpgrade) {
			a := st.Supervisor
			fmt.Fprintf(out, "[%6.2fs] supervisor answers again: pid %d (was %d), version %s (was %s)\n", time.Since(start).Seconds(), a.PID, b.PID, a.Version, b.Version)
			if strings.HasPrefix(a.LastUpgrade, "rolled back") {
				return exitcode.New(ExitFailed, fmt.Errorf("upgrade %s", a.LastUpgrade))
			}
			fmt.Fprintf(out, "upgrade: %s in %s\n", a.LastUpgrade, time.Since(start).Round(time.Millisecond))
			return nil
		}
		if !died && watch != nil && watch.Exited() {
			died = true
			deadline = time.Now().Add(restartWait)
			fmt.Fprintf(out, "[%6.2fs] the supervisor (pid %d) died after re-executing: the new binary failed; waiting up to %s for a supervisor to answer\n", time.Since(start).Seconds(), b.PID, restartWait)
		}
		if time.Now().After(deadline) {
			if died {
				return exitcode.New(ExitNoConnect, fmt.Errorf("upgrade failed: the supervisor (pid %d) died after re-executing, and none answered within %s (last error: %v); its apps run on without one", b.PID, restartWait, err))
			}
			return exitcode.New(ExitNoConnect, fmt.Errorf("upgrade: the supervisor did not answer within 60 s after re-executing (last error: %v)", err))
		}
	}
	return nil
}
