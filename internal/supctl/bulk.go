package supctl

import (
	"context"
	"fmt"
	"io"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

// actMany runs verb on several targets and prints one line per app; it
// fails (exit 1) when any app's result does.
func actMany(ctx context.Context, c *control.Client, verb string, targets []string, out io.Writer) error {
	r, err := c.ActMany(ctx, verb, targets)
	if err != nil {
		return err
	}
	failed := 0
	for _, res := range r.Results {
		if res.OK {
			fmt.Fprintf(out, "%s %s: ok\n", verb, res.App)
			continue
		}
		failed++
		fmt.Fprintf(out, "%s %s: %s\n", verb, res.App, res.Error)
	}
	if failed > 0 {
		return exitcode.New(ExitFailed, fmt.Errorf("%s: %d of %d apps failed", verb, failed, len(r.Results)))
	}
	return nil
}
