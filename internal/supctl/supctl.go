// Package supctl is the supctl command line: it parses arguments, talks to
// the control socket and prints results. Exit statuses (carried by
// exitcode.Error): 0 ok, 1 the operation failed, 2 usage or configuration
// error, 3 cannot connect to the supervisor.
package supctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
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

var usage = `usage: supctl [-s SOCKET] COMMAND [ARGS]

commands:
  status [APP] [--json]          state, PIDs, workers, uptime, restarts, last exit, listeners
  start|stop|restart TARGET...   TARGET: an app, all, or group:NAME; one line per app
  reload APP [--strategy S]              zero-downtime code swap; exit 0 once the new generation serves alone
  deploy APP RELEASE_DIR [--strategy S]  point the app's directory link at RELEASE_DIR (relative to the current directory), reload, point back on failure
  logs APP [-n 100] [-f] [--stderr]      recent output lines of APP (-f: then follow live lines)
  logs APP --reopen              reopen APP's log file (after logrotate) and Gunicorn's own logs (USR1)
  reread                         show what update would do with the edited configuration file
  update [APP...]                apply the configuration file: add, remove, reload or change apps (as SIGHUP)
  upgrade                        re-execute the supervisor binary in place (same PID, apps untouched)
  version | --version            supctl's version, and the supervisor's when one answers
  completion bash|zsh|fish       print a shell completion script
  help | --help

S is a reload strategy: ` + strategyChoice + ` (default: the app's reload.strategy).
The socket is -s PATH, else $SUPCTL_SOCKET, else ` + control.DefaultSocket + `.
Exit status: 0 ok, 1 operation failed, 2 usage error, 3 cannot connect.
`

// Run runs supctl with args (without the program name).
func Run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("supctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // Run prints the usage: on stdout for -h, on stderr for errors
	sock := fs.String("s", "", "control socket path")
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
	path := *sock
	if path == "" {
		path = os.Getenv("SUPCTL_SOCKET")
	}
	if path == "" {
		path = control.DefaultSocket
	}
	c := control.NewClient(path)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	if rest[0] == "logs" && !flagSet(fs, "timeout") {
		// A follow lasts until interrupted, unless a limit was asked for.
		cancel()
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	cmd, cargs := rest[0], rest[1:]
	var err error
	switch cmd {
	case "status":
		err = status(ctx, c, cargs, stdout)
	case "start", "stop", "restart":
		err = act(ctx, c, cmd, cargs, stdout)
	case "reload", "deploy":
		err = reloadCmd(ctx, c, cmd, cargs, stdout)
	case "logs":
		err = logsCmd(ctx, c, cargs, stdout)
	case "upgrade":
		err = upgrade(ctx, c, stdout)
	case "reread":
		err = reread(ctx, c, cargs, stdout)
	case "update":
		err = updateCmd(ctx, c, cargs, stdout)
	case "version":
		versions(ctx, c, path, stdout, stderr)
		return nil
	case "completion":
		err = completion(ctx, c, cargs, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return exitcode.New(ExitUsage, fmt.Errorf("unknown command %q", cmd))
	}
	return classify(err)
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
		return exitcode.New(ExitNoConnect, err)
	}
	var ae *control.APIError
	if errors.As(err, &ae) && ae.Code == control.CodeBadRequest {
		return exitcode.New(ExitUsage, err)
	}
	return exitcode.New(ExitFailed, err)
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

func status(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	flags, pos, err := splitFlags(args, map[string]bool{"json": false})
	if err != nil {
		return err
	}
	if len(pos) > 1 {
		return exitcode.New(ExitUsage, errors.New("status takes at most one app"))
	}
	app := ""
	if len(pos) == 1 {
		app = pos[0]
	}
	st, err := c.Status(ctx, app)
	if err != nil {
		return err
	}
	if _, ok := flags["json"]; ok {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	PrintDegraded(out, st.Supervisor.Degraded)
	PrintStatus(out, st.Apps, time.Now())
	return nil
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
			if l.Steering != "" {
				ls = append(ls, l.Address+" ("+l.Steering+")")
				continue
			}
			ls = append(ls, l.Address)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%d\t%s\n", a.Name, state, pid, len(a.WorkerPIDs), a.Processes, up, a.Restarts, last, a.Generation, strings.Join(ls, ","))
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
	flags, pos, err := splitFlags(args, map[string]bool{"strategy": true})
	if err != nil {
		return err
	}
	want := 1
	if verb == "deploy" {
		want = 2
	}
	if len(pos) != want {
		if verb == "deploy" {
			return exitcode.New(ExitUsage, errors.New("usage: supctl deploy APP RELEASE_DIR [--strategy "+strategyChoice+"]"))
		}
		return exitcode.New(ExitUsage, errors.New("usage: supctl reload APP [--strategy "+strategyChoice+"]"))
	}
	release := ""
	if verb == "deploy" {
		// The supervisor runs elsewhere: a relative release is the caller's.
		if release, err = filepath.Abs(pos[1]); err != nil {
			return exitcode.New(ExitUsage, fmt.Errorf("deploy: release directory %q: %w", pos[1], err))
		}
	}
	start := time.Now()
	ev, err := c.Reload(ctx, pos[0], flags["strategy"], release, func(e control.Event) {
		fmt.Fprintf(out, "[%6.2fs] %s\n", e.Time.Sub(start).Seconds(), e.Phase)
	})
	if err != nil {
		return err
	}
	return finish(out, verb, pos[0], ev)
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
	if ev.Code == control.CodeBadRequest {
		return exitcode.New(ExitUsage, err)
	}
	return exitcode.New(ExitFailed, err)
}

// upgrade asks for a self-upgrade. A successful one replaces the
// supervisor's image, which closes this connection without a final event:
// supctl then reconnects and confirms from the supervisor's own status.
func upgrade(ctx context.Context, c *control.Client, out io.Writer) error {
	before, err := c.Status(ctx, "")
	if err != nil {
		return err
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
	b := before.Supervisor
	deadline := time.Now().Add(60 * time.Second)
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
		if time.Now().After(deadline) {
			return exitcode.New(ExitNoConnect, fmt.Errorf("upgrade: the supervisor did not answer within 60 s after re-executing (last error: %v)", err))
		}
	}
	return nil
}
