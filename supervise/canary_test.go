package supervise

import (
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
)

// deathsEnv is a canaryEnv whose judgements pass and whose worker deaths
// the test sets.
type deathsEnv struct {
	deaths map[int]uint64
	view   reload.CanaryView
}

func (e *deathsEnv) canSplit(string) error                    { return nil }
func (e *deathsEnv) splitGen(string, int, int, float64) error { return nil }
func (e *deathsEnv) canaryView(string) *reload.CanaryView     { return &e.view }
func (e *deathsEnv) workerDeaths(_ string, gen int) uint64    { return e.deaths[gen] }
func (e *deathsEnv) judgeGen(string, int, int, time.Time, config.CanaryLimits) reload.Judgement {
	return reload.Judgement{Figures: "generation 2 vs 1: as good"}
}

// TestCanaryWorkerDeaths: workers of the canary that die during a step
// make it worse (and end the step), unless the old generation's die too;
// deaths before the step's split do not count.
func TestCanaryWorkerDeaths(t *testing.T) {
	tests := []struct {
		name          string
		before, after map[int]uint64
		worse         bool
	}{
		{"none", map[int]uint64{}, map[int]uint64{}, false},
		{"one canary worker", map[int]uint64{}, map[int]uint64{2: 1}, false},
		{"two canary workers", map[int]uint64{}, map[int]uint64{2: 2}, true},
		{"two, but before the split", map[int]uint64{2: 2}, map[int]uint64{2: 2}, false},
		{"old ones die too", map[int]uint64{}, map[int]uint64{1: 1, 2: 3}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := &deathsEnv{deaths: tt.before}
			h := &canaryHost{host: &host{a: &appOwner{cfg: &config.App{Name: "web"}}, run: &reloadRun{}}, env: env,
				plan: strategy.Canary{Steps: []float64{0.1}, For: time.Minute}}
			old, canary := &fakeGen{id: 1}, &fakeGen{id: 2}
			if err := h.Split(old, canary, 0.1); err != nil {
				t.Fatal(err)
			}
			env.deaths = tt.after
			j := h.Judge(old, canary, time.Now())
			if got := len(j.Worse) > 0; got != tt.worse || got != j.Final {
				t.Fatalf("worse %q final %v, want worse %v", j.Worse, j.Final, tt.worse)
			}
			if tt.worse && !strings.Contains(j.Worse[0], "workers died") {
				t.Errorf("worse %q", j.Worse)
			}
		})
	}
}
