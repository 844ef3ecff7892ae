package reload

import (
	"context"
	"fmt"

	"github.com/gunisup/supervisor/reload/strategy"
)

// Steps is what a strategy runs: it replaces old (nil when none serves) with
// a new generation through h and returns it, or a *Failure that says what
// still serves.
type Steps func(ctx context.Context, h Host, old Gen, progress Progress) (Gen, error)

// steps maps each strategy of the registry to the function, in its own file,
// that runs it; a test fails for a registered strategy missing here.
var steps = map[strategy.Strategy]Steps{
	strategy.Swap:    Swap,
	strategy.USR2:    USR2,
	strategy.Restart: Restart,
	strategy.Overlap: Overlap,
}

// Run replaces old by a new generation with strategy s (see Steps). A
// strategy without steps is a *Failure and nothing is started.
func Run(ctx context.Context, s strategy.Strategy, h Host, old Gen, progress Progress) (Gen, error) {
	run, ok := steps[s]
	if !ok {
		return nil, &Failure{Cause: fmt.Sprintf("no steps for strategy %q", s)}
	}
	return run(ctx, h, old, progress)
}
