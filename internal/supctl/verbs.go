package supctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/internal/textutil"
)

// Exit statuses of `supctl status`, as LSB init scripts and supervisorctl
// give them.
const (
	// ExitNotRunning: some app named is not running.
	ExitNotRunning = 3
	// ExitUnknown: an unknown app, or the supervisor cannot be asked.
	ExitUnknown = 4
)

// verbHelp is each verb's `supctl VERB --help` text.
var verbHelp = map[string]string{
	"status": `usage: supctl status [TARGET...] [--json]
State, PIDs, workers, uptime, restarts, last exit and listeners of the apps
TARGET names (default: every app). TARGET: an app, an instance base name
(worker for worker:0, worker:1), all, or group:NAME.
Exit status: 0 every app named runs, 3 some app is not running, 4 unknown
app or no supervisor answers.`,
	"start": `usage: supctl start TARGET...
Start the apps and wait until each counts as started (a process app: still
running after start_settle; a Gunicorn app: ready). Exit status 1 when any
fails to start, with its last output lines.`,
	"stop": `usage: supctl stop TARGET...
Stop the apps (stop_signal, then KILL after stop_timeout) and wait until
nothing of them runs.`,
	"restart": `usage: supctl restart TARGET...
Stop and start the apps; waits as start does. Exit status 1 when any fails
to start, with its last output lines.`,
	"signal": `usage: supctl signal TARGET... SIGNAL
Send SIGNAL to the main process of each app (a Gunicorn master: TTIN adds
a worker, TTOU removes one, HUP reloads its configuration). Allowed: ` + strings.Join(control.SignalNames(), " ") + `.`,
	"pid": `usage: supctl pid [TARGET...]
Without TARGET: the supervisor's own PID. With: the main PID of each app
(0 when it does not run; exit status 3 then).`,
	"reload": `usage: supctl reload TARGET... [--strategy S]
Zero-downtime code swap of each app, one after another; exit 0 once every
new generation serves alone.`,
	"deploy": `usage: supctl deploy APP RELEASE_DIR [--strategy S]
Point the app's directory link at RELEASE_DIR (relative to the current
directory), reload, point back on failure.`,
	"rollback": `usage: supctl rollback APP
Put the app's previous release back in service. Within keep_previous after a
swap, new connections are steered back to the kept previous generation (one
map update or rename per listener; the time is printed) and the newer one is
drained and stopped. Otherwise the previous release that passed the gate
(the supervisor remembers the last 5) is deployed as deploy does.`,
	"logs":       logsUsage + "\nRecent output lines of the apps TARGET names, or of every app interleaved by time\n(-f: then follow live lines; -n 0: no history); --reopen reopens the apps' log files (after logrotate).",
	"top":        "usage: supctl top [--interval 1s] [--routes APP]\nLive table of every app: state, CPU, RSS, workers, accept queue, req/s, p99, Apdex,\n5xx percentage, restarts (redrawn in place on a terminal; printed once when piped).\n--routes APP: the app's slowest routes (p99 over the interval) and those with the\nmost 5xx answers, from its per-route series.",
	"errors":     errorsHelp,
	"log":        "usage: supctl log [-n LINES] [-f]\nThe supervisor's own recent log lines (-f: then follow).",
	"reread":     "usage: supctl reread\nShow what update would do with the edited configuration file.",
	"update":     "usage: supctl update [TARGET...]\nApply the configuration file: add, remove, reload or change apps (as SIGHUP).",
	"upgrade":    "usage: supctl upgrade\nRe-execute the supervisor binary in place (same PID, apps untouched).",
	"version":    "usage: supctl version\nsupctl's version, and the supervisor's when one answers.",
	"completion": "usage: supctl completion bash|zsh|fish\nPrint a shell completion script.",
	"help":       "usage: supctl help [VERB]",
}

// wantsHelp reports whether args ask for a verb's help.
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

// help prints the general usage, or verb's help.
func help(args []string, out io.Writer) error {
	if len(args) == 0 {
		fmt.Fprint(out, usage)
		return nil
	}
	h, ok := verbHelp[args[0]]
	if !ok {
		return unknownVerb(args[0])
	}
	fmt.Fprintln(out, h)
	return nil
}

// unknownVerb is the one-line usage error of an unknown verb, with the
// closest verb when one is close.
func unknownVerb(v string) error {
	msg := fmt.Sprintf("unknown command %q", v)
	if s := textutil.Closest(v, verbs); s != "" {
		msg += fmt.Sprintf(" (did you mean %q?)", s)
	}
	return exitcode.New(ExitUsage, errors.New(msg+"; see supctl help"))
}

// permissionHint turns a refused connection to the control socket into
// what to do about it.
func permissionHint(err error) error {
	var ce *control.ConnectError
	if errors.As(err, &ce) && errors.Is(err, unix.EACCES) {
		return fmt.Errorf("permission denied on the control socket %s: run supctl as root or as a member of the supervisor's control_group", ce.Path)
	}
	var ae *control.APIError
	if errors.As(err, &ae) && ae.Code == control.CodeForbidden {
		return fmt.Errorf("%w: run supctl as root or as a member of the supervisor's control_group", err)
	}
	return err
}

// statusCmd prints the apps' status and exits 3 when one of them is not
// running, 4 for an unknown app or when no supervisor answers.
func statusCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	flags, targets, err := splitFlags(args, map[string]bool{"json": false})
	if err != nil {
		return err
	}
	st, err := c.StatusOf(ctx, targets)
	if err != nil {
		var ae *control.APIError
		if errors.As(err, &ae) && ae.Code == control.CodeNotFound {
			return exitcode.New(ExitUnknown, err)
		}
		if code := exitcode.Code(classify(err)); code == ExitNoConnect {
			return exitcode.New(ExitUnknown, permissionHint(err))
		}
		return err
	}
	if _, ok := flags["json"]; ok {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return err
		}
	} else {
		PrintDegraded(out, st.Supervisor.Degraded)
		PrintStatus(out, st.Apps, time.Now())
	}
	return notRunning(st.Apps)
}

// notRunning is exit status 3 naming the apps of apps not running, or nil.
func notRunning(apps []control.AppStatus) error {
	var down []string
	for _, a := range apps {
		if a.State != control.StateRunning {
			down = append(down, a.Name+" "+string(a.State))
		}
	}
	if len(down) == 0 {
		return nil
	}
	return exitcode.New(ExitNotRunning, fmt.Errorf("not running: %s", strings.Join(down, ", ")))
}

// pidCmd prints the supervisor's PID, or each target app's main PID.
func pidCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	st, err := c.StatusOf(ctx, args)
	if err != nil {
		return err
	}
	if len(args) == 0 {
		fmt.Fprintln(out, st.Supervisor.PID)
		return nil
	}
	for _, a := range st.Apps {
		if len(st.Apps) == 1 {
			fmt.Fprintln(out, a.MasterPID)
			continue
		}
		fmt.Fprintf(out, "%s %d\n", a.Name, a.MasterPID)
	}
	return notRunning(st.Apps)
}

// signalCmd sends the last argument's signal to the targets before it.
func signalCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	if len(args) < 2 {
		return exitcode.New(ExitUsage, errors.New(strings.SplitN(verbHelp["signal"], "\n", 2)[0]))
	}
	sig, targets := args[len(args)-1], args[:len(args)-1]
	if _, err := control.ParseSignal(sig); err != nil {
		return exitcode.New(ExitUsage, err)
	}
	r, err := c.Signal(ctx, sig, targets)
	if err != nil {
		return err
	}
	return printResults(out, "signal "+strings.ToUpper(strings.TrimPrefix(strings.ToUpper(sig), "SIG")), r)
}

// printResults prints one line per app of r (and a failed start's output
// tail) and fails (exit 1) when any app's result does.
func printResults(out io.Writer, verb string, r *control.BulkResponse) error {
	failed := 0
	for _, res := range r.Results {
		if res.OK {
			if res.PID != 0 {
				fmt.Fprintf(out, "%s %s: ok (pid %d)\n", verb, res.App, res.PID)
				continue
			}
			if res.Note != "" {
				fmt.Fprintf(out, "%s %s: ok, %s\n", verb, res.App, res.Note)
				continue
			}
			fmt.Fprintf(out, "%s %s: ok\n", verb, res.App)
			continue
		}
		failed++
		fmt.Fprintf(out, "%s %s: %s\n", verb, res.App, res.Error)
		for _, l := range res.Tail {
			fmt.Fprintf(out, "  | %s\n", strings.TrimRight(l, "\r"))
		}
	}
	if failed > 0 {
		return exitcode.New(ExitFailed, fmt.Errorf("%s: %d of %d apps failed", verb, failed, len(r.Results)))
	}
	return nil
}

// resolveTargets names the apps targets mean, asking the supervisor.
func resolveTargets(ctx context.Context, c *control.Client, targets []string) ([]string, error) {
	st, err := c.StatusOf(ctx, targets)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(st.Apps))
	for i, a := range st.Apps {
		names[i] = a.Name
	}
	return names, nil
}
