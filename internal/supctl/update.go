package supctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

// reread prints what `supctl update` would do, one line per app, changing
// nothing; an invalid file fails (exit 2) with its file:line errors.
func reread(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	if len(args) != 0 {
		return exitcode.New(ExitUsage, errors.New("usage: supctl reread"))
	}
	r, err := c.Reread(ctx)
	if err != nil {
		return err
	}
	for _, a := range r.Apps {
		switch a.Change {
		case "changed":
			fmt.Fprintf(out, "%s: changed (%s): %s\n", a.App, strings.Join(a.Keys, ", "), a.Action)
		default:
			fmt.Fprintf(out, "%s: %s\n", a.App, a.Change)
		}
	}
	if len(r.Supervisor) > 0 {
		fmt.Fprintf(out, "[supervisor]: changed (%s): applied only when the supervisor restarts\n", strings.Join(r.Supervisor, ", "))
	}
	return nil
}

// updateCmd applies the configuration file to the apps named (all when
// none), printing each app's change as it is applied.
func updateCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	start := time.Now()
	ev, err := c.Update(ctx, args, func(e control.Event) {
		fmt.Fprintf(out, "[%6.2fs] %s\n", e.Time.Sub(start).Seconds(), e.Phase)
	})
	if err != nil {
		return err
	}
	what := "all"
	if len(args) > 0 {
		what = strings.Join(args, " ")
	}
	return finish(out, "update", what, ev)
}
