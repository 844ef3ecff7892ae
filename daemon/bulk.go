package daemon

import (
	"context"

	"github.com/gunisup/supervisor/control"
)

// ActMany implements control.BulkBackend.
func (b backend) ActMany(ctx context.Context, verb string, targets []string) ([]control.AppResult, error) {
	names, err := b.m.Config().Resolve(targets)
	if err != nil {
		return nil, wireError(err)
	}
	errs, err := b.m.Act(ctx, verb, names)
	if err != nil {
		return nil, wireError(err)
	}
	out := make([]control.AppResult, len(names))
	for i, n := range names {
		out[i] = control.ResultOf(n, wireError(errs[n]))
	}
	return out, nil
}
