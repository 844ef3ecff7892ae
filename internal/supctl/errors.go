package supctl

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gunisup/supervisor/control"
)

const errorsUsage = "usage: supctl errors [TARGET...] [-v] [--json]"

// errorsHelp is `supctl errors --help`.
const errorsHelp = errorsUsage + `
The error inbox of the apps TARGET names (default: every app): Python
tracebacks their stderr carried, grouped by exception type and the innermost
frames of the app's own code, most recently seen first, with their count,
first and last time seen, the generation they first appeared in and the
latest exception line; -v prints each group's latest full traceback. Then
Gunicorn's worker timeouts and workers killed by a signal.`

// errorsCmd prints the error inboxes of the targets.
func errorsCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	flags, targets, err := splitFlags(args, map[string]bool{"json": false, "v": false})
	if err != nil {
		return err
	}
	resp, err := c.Errors(ctx, targets)
	if err != nil {
		return err
	}
	if _, ok := flags["json"]; ok {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(resp)
	}
	_, verbose := flags["v"]
	for i, a := range resp.Apps {
		if i > 0 {
			fmt.Fprintln(out)
		}
		PrintErrors(out, a, verbose, time.Now())
	}
	return nil
}

// PrintErrors writes one app's inbox: a header line, a table of the groups
// (each followed by its exception line, or with verbose its full
// traceback), and the worker counters.
func PrintErrors(out io.Writer, a control.AppErrors, verbose bool, now time.Time) {
	fmt.Fprintf(out, "%s: %d exception group%s", a.Name, len(a.Groups), plural(len(a.Groups)))
	if a.DroppedLines > 0 {
		fmt.Fprintf(out, " (%d stderr lines not parsed: the parser fell behind)", a.DroppedLines)
	}
	fmt.Fprintln(out)
	for _, g := range a.Groups {
		fmt.Fprintf(out, "  %d x %s  generation %d, first %s, last %s  [%s]\n", g.Count, g.Exception, g.Generation,
			ago(now, g.FirstSeen), ago(now, g.LastSeen), g.Fingerprint)
		if g.Where != "" {
			fmt.Fprintf(out, "      at %s\n", g.Where)
		}
		lines := []string{g.Message}
		if verbose {
			lines = g.Traceback
		}
		for _, l := range lines {
			fmt.Fprintf(out, "    | %s\n", l)
		}
	}
	var workers []string
	if a.WorkerTimeouts > 0 {
		workers = append(workers, fmt.Sprintf("%d timed out", a.WorkerTimeouts))
	}
	for _, sig := range slices.Sorted(maps.Keys(a.WorkerKilled)) {
		workers = append(workers, fmt.Sprintf("%d killed by %s", a.WorkerKilled[sig], sig))
	}
	if len(workers) > 0 {
		fmt.Fprintf(out, "  workers: %s\n", strings.Join(workers, ", "))
	}
}

// ago is t as a time of day (UTC, with the date when not today) and how
// long before now it was.
func ago(now, t time.Time) string {
	layout := "15:04:05"
	if t.UTC().YearDay() != now.UTC().YearDay() || t.Year() != now.Year() {
		layout = "2006-01-02 15:04:05"
	}
	return fmt.Sprintf("%s (%s ago)", t.UTC().Format(layout), now.Sub(t).Round(time.Second))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
