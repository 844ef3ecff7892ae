package scale

import (
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
)

// TestScaler: steps up after scaleUpSamples saturated samples, one per
// cooldown, never above max; steps down after scaleDownIdle of idleness,
// one per cooldown, never below min; a busy app without a queue neither
// grows nor shrinks.
func TestScaler(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type obs struct {
		after time.Duration
		queue int
		busy  float64
	}
	tick := workerSampleEvery
	repeat := func(n int, queue int, busy float64) []obs {
		out := make([]obs, n)
		for i := range out {
			out[i] = obs{tick, queue, busy}
		}
		return out
	}
	for _, tc := range []struct {
		name       string
		lo, hi, at int
		samples    []obs
		want       []int // the target after each step
	}{
		{"one saturated sample is not enough", 2, 8, 2, []obs{{tick, 5, -1}, {tick, 0, -1}, {tick, 5, -1}, {tick, 0, -1}}, nil},
		{"queue held up scales to max, one per cooldown", 2, 4, 2, repeat(40, 3, -1), []int{3, 4}},
		{"busy ratio alone scales up", 2, 8, 2, repeat(2, 0, 0.95), []int{3}},
		{"idle scales down after the idle time", 2, 8, 4, repeat(int((scaleDownIdle+2*scaleDownCooldown)/tick)+1, 0, 0.1), []int{3, 2}},
		{"idle never below min", 2, 8, 2, repeat(100, 0, 0), nil},
		{"busy without a queue holds", 2, 8, 4, repeat(100, 0, 0.7), nil},
		{"unknown busy ratio with an empty queue is idle", 2, 8, 3, repeat(int(scaleDownIdle/tick)+1, 0, -1), []int{2}},
		{"start above max is clamped", 2, 8, 20, nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScaler(tc.lo, tc.hi, tc.at)
			if s.target < tc.lo || s.target > tc.hi {
				t.Fatalf("start target %d outside %d..%d", s.target, tc.lo, tc.hi)
			}
			now := t0
			var got []int
			for _, o := range tc.samples {
				now = now.Add(o.after)
				if step, reason := s.observe(scaleSample{at: now, queue: o.queue, busy: o.busy}); step != 0 {
					if reason == "" {
						t.Errorf("step %+d without a reason", step)
					}
					got = append(got, s.target)
				}
			}
			if len(got) != len(tc.want) {
				t.Fatalf("targets after steps %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("targets after steps %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// TestWorkersFor: a new generation starts at the current target, clamped
// into the range; a fixed count is left alone.
func TestWorkersFor(t *testing.T) {
	for _, tc := range []struct {
		lo, hi, target, want int
	}{{2, 8, 0, 2}, {2, 8, 5, 5}, {2, 8, 12, 8}, {4, 0, 7, 4}} {
		st := &Stats{}
		st.target.Store(int64(tc.target))
		app := &config.App{Name: "web"}
		app.Workers, app.WorkersMax = tc.lo, tc.hi
		if got := WorkersFor(app, st).Workers; got != tc.want {
			t.Errorf("workers %d..%d at target %d: got %d, want %d", tc.lo, tc.hi, tc.target, got, tc.want)
		}
		if app.Workers != tc.lo {
			t.Errorf("WorkersFor changed its argument")
		}
	}
}
