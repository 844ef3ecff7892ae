package supctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

const logsUsage = "usage: supctl logs TARGET... [-n LINES] [-f] [--stderr] | supctl logs TARGET... --reopen"

// logsCmd runs `supctl logs`: it prints the app's recent lines (and with -f
// every later one until interrupted), or with --reopen has the app's log
// files reopened.
func logsCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	flags, pos, err := splitFlags(args, map[string]bool{"n": true, "f": false, "follow": false, "stderr": false, "reopen": false})
	if err != nil {
		return err
	}
	if len(pos) == 0 {
		return exitcode.New(ExitUsage, errors.New(logsUsage))
	}
	names, err := resolveTargets(ctx, c, pos)
	if err != nil {
		return err
	}
	if _, ok := flags["reopen"]; ok {
		if len(flags) > 1 {
			return exitcode.New(ExitUsage, errors.New("--reopen takes no other flag: "+logsUsage))
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
	q := control.LogQuery{N: 100}
	if s, ok := flags["n"]; ok {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return exitcode.New(ExitUsage, fmt.Errorf("-n wants a number of lines >= 0, got %q", s))
		}
		q.N = n
	}
	_, f := flags["f"]
	_, follow := flags["follow"]
	_, q.Stderr = flags["stderr"]
	q.Follow = f || follow
	return logsOf(ctx, c, names, q, out)
}

// logsOf prints the lines of every app of names: one after another, or
// with q.Follow side by side (each line names its app) until ctx ends.
func logsOf(ctx context.Context, c *control.Client, names []string, q control.LogQuery, out io.Writer) error {
	if !q.Follow || len(names) == 1 {
		for _, n := range names {
			if err := c.Logs(ctx, n, q, func(l control.LogLine) { printLogLine(out, n, l) }); err != nil {
				return err
			}
		}
		return nil
	}
	var mu sync.Mutex
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Go(func() {
			errs[i] = c.Logs(ctx, n, q, func(l control.LogLine) {
				mu.Lock()
				defer mu.Unlock()
				printLogLine(out, n, l)
			})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
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
