package reload

import (
	"fmt"
	"sync"
	"time"

	"github.com/gunisup/supervisor/reload/strategy"
)

// CanaryView is an app's canary as status shows it: the step running (or
// the last judgement once it ended). Safe for concurrent use.
type CanaryView struct {
	mu      sync.Mutex
	gen     int
	plan    strategy.Canary
	share   float64
	began   time.Time
	running bool
	line    string
}

// Set records the step in progress of the canary of generation gen with
// plan (see CanaryHost.Judged; share 0: the canary ended).
func (v *CanaryView) Set(gen int, plan strategy.Canary, share float64, began time.Time, j Judgement) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.gen, v.plan, v.running = gen, plan, share > 0
	if share > 0 {
		v.share, v.began = share, began
	}
	if j.Figures != "" {
		v.line = j.Figures
		if len(j.Worse) > 0 {
			v.line += fmt.Sprintf("; worse: %v", j.Worse)
		}
	}
}

// Status is the canary's line for supctl status ("" before any canary):
// the step running, or the last judgement once the canary ended.
func (v *CanaryView) Status() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.line == "" && !v.running {
		return ""
	}
	if !v.running {
		return fmt.Sprintf("last canary (generation %d, steps %s): %s", v.gen, v.plan.Shares(), v.line)
	}
	return fmt.Sprintf("canary: generation %d gets %.0f%% of new connections, %s of %s (steps %s): %s", v.gen, 100*v.share,
		time.Since(v.began).Round(time.Second), v.plan.For, v.plan.Shares(), v.line)
}
