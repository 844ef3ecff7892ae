package reload

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gunisup/supervisor/reload/strategy"
)

// CanaryHost is what a canary reload needs beyond Host.
type CanaryHost interface {
	Host
	// Split sends share (0 to 1) of the app's new connections to g and the
	// rest to old; 0 sends them all to old.
	Split(old, g Gen, share float64) error
	// Judge compares g with old over the seconds since from.
	Judge(old, g Gen, from time.Time) Judgement
	// WorkerDeaths counts g's workers that timed out or were killed.
	WorkerDeaths(g Gen) uint64
	// Judged records the step in progress of canary g for status: its
	// share, when it began and the latest judgement (share 0: the canary
	// ended).
	Judged(g Gen, share float64, began time.Time, j Judgement)
}

// Judgement is one look at a canary against the old generation.
type Judgement struct {
	// Worse lists the limits the canary broke ("" none: as good).
	Worse []string
	// Final is true when the step may end on Worse at once (the canary
	// answered enough requests); otherwise only the step's end judges.
	Final bool
	// Figures is the comparison judged by, one line.
	Figures string
}

// canaryTick is how often a step is judged while it runs.
const canaryTick = time.Second

// ErrCanaryWorse is wrapped by the Failure of a canary rolled back on its
// judgement.
var ErrCanaryWorse = errors.New("canary worse than the serving generation")

// Canary starts a new generation on sockets of its own, waits for it to be
// ready and healthy, then sends it each share of plan's steps of the new
// connections for plan.For, judging it against old every second. A
// canary worse than old (see Judgement) is rolled back at once: all new
// connections go to old again and the canary drains and stops. After the
// last step it is committed and old drained, as Swap ends. ctx ending
// (a stop, a second reload's refusal does not) rolls the canary back too.
func Canary(ctx context.Context, h CanaryHost, old Gen, plan strategy.Canary, progress Progress) (Gen, error) {
	if old == nil {
		return nil, &Failure{Cause: "a canary needs a serving generation to compare with"}
	}
	progress(fmt.Sprintf("starting canary generation (steps %s, %s each)", plan.Shares(), plan.For))
	g, err := h.Spawn(ctx, "")
	if err != nil {
		return nil, &Failure{Cause: "cannot start new generation: " + err.Error(), Err: err}
	}
	progress(fmt.Sprintf("started %s in %s; waiting for readiness and health", g, h.Dir(g)))
	if err := h.Ready(ctx, g); err != nil {
		return nil, abort(h, g, err, progress)
	}
	for _, share := range plan.Steps {
		if err := canaryStep(ctx, h, old, g, share, plan.For, progress); err != nil {
			return nil, rollBackCanary(h, old, g, err, progress)
		}
	}
	h.Judged(g, 0, time.Time{}, Judgement{})
	progress(fmt.Sprintf("%s passed every step; switching", g))
	if err := h.Commit(ctx, g); err != nil {
		return nil, rollBackCanary(h, old, g, err, progress)
	}
	progress(fmt.Sprintf("draining %s", old))
	if err := h.Drain(context.WithoutCancel(ctx), old); err != nil {
		progress(fmt.Sprintf("warning: draining %s: %v", old, err))
	}
	progress(fmt.Sprintf("%s stopped (%s)", old, old.ExitReason()))
	return g, nil
}

// canaryStep sends share of the new connections to g for every and judges
// it each canaryTick (Judge, and the worker deaths since the split: see
// workersDied); it prints the judgement it ends on and returns an error
// wrapping ErrCanaryWorse when g is worse, ctx's cause when ctx ends.
func canaryStep(ctx context.Context, h CanaryHost, old, g Gen, share float64, every time.Duration, progress Progress) error {
	base := [2]uint64{h.WorkerDeaths(old), h.WorkerDeaths(g)}
	if err := h.Split(old, g, share); err != nil {
		return err
	}
	began := time.Now()
	progress(fmt.Sprintf("canary: %s gets %.0f%% of new connections for %s", g, 100*share, every))
	judge := func() Judgement {
		j := h.Judge(old, g, began)
		if why := workersDied(base, [2]uint64{h.WorkerDeaths(old), h.WorkerDeaths(g)}); why != "" {
			j.Worse, j.Final = append(j.Worse, why), true
		}
		h.Judged(g, share, began, j)
		return j
	}
	tick := time.NewTicker(canaryTick)
	defer tick.Stop()
	end := time.NewTimer(every)
	defer end.Stop()
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("canary cancelled: %w", context.Cause(ctx))
		case <-tick.C:
			if j := judge(); len(j.Worse) > 0 && j.Final {
				return judged(share, began, j, progress)
			}
		case <-end.C:
			return judged(share, began, judge(), progress)
		}
	}
}

// minWorkerDeaths is how many workers of the canary generation must die
// in a step (timeouts, kills), while none of the old one's do, for the
// canary to be worse.
const minWorkerDeaths = 2

// workersDied is the canary's worse line when at least minWorkerDeaths of
// its workers died since the step's split and none of the old
// generation's did ("" otherwise); base and now count the deaths of the
// old generation, then the canary's, at the split and now.
func workersDied(base, now [2]uint64) string {
	oldDied, newDied := now[0]-base[0], now[1]-base[1]
	if newDied < minWorkerDeaths || oldDied > 0 {
		return ""
	}
	return fmt.Sprintf("%d workers died (timeout or signal), none of the old generation's", newDied)
}

// judged prints the judgement a step ended on and returns nil when the
// canary passed, an error wrapping ErrCanaryWorse otherwise.
func judged(share float64, began time.Time, j Judgement, progress Progress) error {
	took := time.Since(began).Round(100 * time.Millisecond)
	if len(j.Worse) == 0 {
		progress(fmt.Sprintf("canary %.0f%% after %s: pass: %s", 100*share, took, j.Figures))
		return nil
	}
	why := strings.Join(j.Worse, "; ")
	progress(fmt.Sprintf("canary %.0f%% after %s: worse (%s): %s", 100*share, took, why, j.Figures))
	return fmt.Errorf("%w at %.0f%% after %s: %s", ErrCanaryWorse, 100*share, took, why)
}

// rollBackCanary sends every new connection to old again, then stops g
// and describes why.
func rollBackCanary(h CanaryHost, old, g Gen, cause error, progress Progress) error {
	progress(fmt.Sprintf("rolling back: new connections to %s again", old))
	if err := h.Split(old, g, 0); err != nil {
		progress(fmt.Sprintf("warning: steering back to %s: %v", old, err))
	}
	h.Judged(g, 0, time.Time{}, Judgement{})
	return abort(h, g, cause, progress)
}

// canaryKey is the context key of a canary plan (WithCanary).
type canaryKey struct{}

// WithCanary returns ctx carrying plan: a reload requested with it runs
// as a canary (the control API's ?canary= travels to the owner this way,
// beside the strategy).
func WithCanary(ctx context.Context, plan strategy.Canary) context.Context {
	return context.WithValue(ctx, canaryKey{}, plan)
}

// CanaryOf returns the plan WithCanary put in ctx, false for none.
func CanaryOf(ctx context.Context) (strategy.Canary, bool) {
	p, ok := ctx.Value(canaryKey{}).(strategy.Canary)
	return p, ok && p.On()
}
