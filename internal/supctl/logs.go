package supctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

const logsUsage = "usage: supctl logs [TARGET...|all] [-n LINES|all] [-f] [--stderr] [--since DURATION|TIME] | supctl logs TARGET... --reopen"

// logsCmd runs `supctl logs`: it prints the recent lines of one app, of
// several, or of every app (no app, or `all`) interleaved by time (and
// with -f every later line until interrupted), or with --reopen has the
// app's log files reopened.
func logsCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	flags, pos, err := splitFlags(args, map[string]bool{"n": true, "f": false, "follow": false, "stderr": false, "reopen": false, "since": true})
	if err != nil {
		return err
	}
	if _, ok := flags["reopen"]; ok {
		return reopenLogs(ctx, c, flags, pos, out)
	}
	q, err := logQuery(flags, time.Now())
	if err != nil {
		return exitcode.New(ExitUsage, fmt.Errorf("%w: %s", err, logsUsage))
	}
	if len(pos) == 0 || slices.Contains(pos, "all") {
		return c.LogsAll(ctx, nil, q, func(l control.LogLine) { printLogLine(out, l.App, l) })
	}
	names, err := resolveTargets(ctx, c, pos)
	if err != nil {
		return err
	}
	if len(names) == 1 {
		return c.Logs(ctx, names[0], q, func(l control.LogLine) { printLogLine(out, names[0], l) })
	}
	return c.LogsAll(ctx, names, q, func(l control.LogLine) { printLogLine(out, l.App, l) })
}

// reopenLogs has the log files of the apps of targets pos reopened.
func reopenLogs(ctx context.Context, c *control.Client, flags map[string]string, pos []string, out io.Writer) error {
	if len(flags) > 1 || len(pos) == 0 {
		return exitcode.New(ExitUsage, errors.New("--reopen takes targets and no other flag: "+logsUsage))
	}
	names, err := resolveTargets(ctx, c, pos)
	if err != nil {
		return err
	}
	for _, n := range names {
		r, err := c.ReopenLogs(ctx, n)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, r.Message)
	}
	return nil
}

// logQuery reads -n (a count, "all" for every line held, 0 for none),
// -f, --stderr and --since (a duration before now, or an RFC 3339 time).
func logQuery(flags map[string]string, now time.Time) (control.LogQuery, error) {
	q := control.LogQuery{N: 100}
	if s, ok := flags["n"]; ok {
		n, err := strconv.Atoi(s)
		switch {
		case s == "all":
			q.N = 0
		case err != nil || n < 0:
			return q, fmt.Errorf("-n wants a number of lines >= 0 or all, got %q", s)
		case n == 0:
			q.NoHistory = true
		default:
			q.N = n
		}
	}
	if s, ok := flags["since"]; ok {
		since, err := parseSince(s, now)
		if err != nil {
			return q, err
		}
		q.Since = since
		if _, n := flags["n"]; !n {
			q.N = 0 // --since alone: every line since then
		}
	}
	_, f := flags["f"]
	_, follow := flags["follow"]
	_, q.Stderr = flags["stderr"]
	q.Follow = f || follow
	return q, nil
}

// parseSince reads --since: a Go duration (10m, 1h30m) counted back from
// now, or an RFC 3339 time.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("--since wants a duration (10m) or an RFC 3339 time (2026-01-02T15:04:05Z), got %q", s)
}

// printLogLine writes one line as "TIME APP[GEN] STREAM: TEXT", marking the
// pieces of a split line "(split K)" and the last one "(split K, end)".
func printLogLine(out io.Writer, app string, l control.LogLine) {
	split := ""
	if l.Part > 0 {
		split = " (split " + strconv.Itoa(l.Part)
		if !l.More {
			split += ", end"
		}
		split += ")"
	}
	fmt.Fprintf(out, "%s %s[%d] %s%s: %s\n", l.Time.UTC().Format("2006-01-02T15:04:05.000Z07:00"), app, l.Gen, l.Stream, split, l.Text)
}

// printTraceback writes the last stderr lines of an app that exited
// unexpectedly, indented under a heading.
func printTraceback(out io.Writer, a control.AppStatus) {
	if len(a.Traceback) == 0 {
		return
	}
	fmt.Fprintf(out, "%s: last stderr lines of the generation that exited:\n", a.Name)
	for _, l := range a.Traceback {
		fmt.Fprintf(out, "  | %s\n", strings.TrimRight(l, "\r"))
	}
}

// flagSet reports whether the flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
