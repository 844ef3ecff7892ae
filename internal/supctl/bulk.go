package supctl

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/gunisup/supervisor/control"
)

// actMany runs verb on targets (apps, all, group:NAME) and prints one line
// per app; it fails (exit 1) when any app's result does.
func actMany(ctx context.Context, c *control.Client, verb string, targets []string, out io.Writer) error {
	r, err := c.ActMany(ctx, verb, targets)
	var ae *control.APIError
	if errors.As(err, &ae) && ae.Code == control.CodeUnavailable && len(targets) == 1 {
		// A backend that acts on one app at a time.
		one, err := c.Act(ctx, verb, targets[0])
		if err != nil {
			return err
		}
		fmt.Fprintln(out, one.Message)
		return nil
	}
	if err != nil {
		return err
	}
	return printResults(out, verb, r)
}
