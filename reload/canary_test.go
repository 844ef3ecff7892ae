package reload

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/reload/strategy"
)

// fakeCanaryHost is fakeHost with a split and a judgement: worseAt is the
// share at which the canary is judged worse (0: never), final whether
// that judgement may end a step early; dying workers of the new
// generation die at each split to a share above 0.
type fakeCanaryHost struct {
	fakeHost
	worseAt  float64
	final    bool
	share    float64
	splitErr error
	judged   []float64
	dying    uint64
	deaths   map[string]uint64
}

func (h *fakeCanaryHost) Split(old, g Gen, share float64) error {
	h.steps = append(h.steps, fmt.Sprintf("split %s %s %.0f%%", old, g, 100*share))
	if h.splitErr != nil && share > 0 {
		return h.splitErr
	}
	h.share = share
	if share > 0 && h.dying > 0 {
		if h.deaths == nil {
			h.deaths = map[string]uint64{}
		}
		h.deaths[g.String()] += h.dying
	}
	return nil
}

func (h *fakeCanaryHost) WorkerDeaths(g Gen) uint64 { return h.deaths[g.String()] }

func (h *fakeCanaryHost) Judge(old, g Gen, from time.Time) Judgement {
	j := Judgement{Figures: fmt.Sprintf("%s vs %s at %.0f%%", g, old, 100*h.share)}
	if h.worseAt != 0 && h.share >= h.worseAt {
		j.Worse, j.Final = []string{"error rate 10% above 0% + 1 points"}, h.final
	}
	return j
}

func (h *fakeCanaryHost) Judged(_ Gen, share float64, began time.Time, j Judgement) {
	h.judged = append(h.judged, share)
}

func TestCanarySteps(t *testing.T) {
	quick := strategy.Canary{Steps: []float64{0.1, 0.5}, For: 10 * time.Millisecond}
	long := strategy.Canary{Steps: []float64{0.1}, For: time.Hour}
	tests := []struct {
		name      string
		host      *fakeCanaryHost
		plan      strategy.Canary
		wantSteps []string
		wantErr   error // errors.Is; nil: success
		wantLine  string
	}{
		{"promoted", &fakeCanaryHost{}, quick,
			[]string{"spawn ", "ready new", "split old new 10%", "split old new 50%", "commit new", "drain old"}, nil, "canary 50% after"},
		{"worse at 50% at the step's end", &fakeCanaryHost{worseAt: 0.5}, quick,
			[]string{"spawn ", "ready new", "split old new 10%", "split old new 50%", "split old new 0%", "abort new"}, ErrCanaryWorse, "canary 50% after"},
		{"worse with enough requests ends the step early", &fakeCanaryHost{worseAt: 0.1, final: true}, long,
			[]string{"spawn ", "ready new", "split old new 10%", "split old new 0%", "abort new"}, ErrCanaryWorse, ": worse (error rate"},
		{"canary workers die: worse at once", &fakeCanaryHost{dying: 2}, long,
			[]string{"spawn ", "ready new", "split old new 10%", "split old new 0%", "abort new"}, ErrCanaryWorse, "2 workers died"},
		{"split refused", &fakeCanaryHost{splitErr: errors.New("no split")}, quick,
			[]string{"spawn ", "ready new", "split old new 10%", "split old new 0%", "abort new"}, nil, "rolling back"},
		{"not ready", &fakeCanaryHost{fakeHost: fakeHost{readyErr: map[string]error{"new": errors.New("boom")}}}, quick,
			[]string{"spawn ", "ready new", "abort new"}, nil, "failed: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var phases []string
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			g, err := Canary(ctx, tt.host, newGen("old"), tt.plan, func(s string) { phases = append(phases, s) })
			if !reflect.DeepEqual(tt.host.steps, tt.wantSteps) {
				t.Errorf("steps:\n got %q\nwant %q", tt.host.steps, tt.wantSteps)
			}
			promoted := tt.wantSteps[len(tt.wantSteps)-1] == "drain old"
			if promoted != (err == nil) || promoted != (g != nil) {
				t.Fatalf("gen %v, err %v; want promoted %v", g, err, promoted)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err %v, want %v", err, tt.wantErr)
			}
			var f *Failure
			if err != nil && (!errors.As(err, &f) || !f.RolledBack) {
				t.Errorf("err %v: want a rolled back *Failure", err)
			}
			if all := strings.Join(phases, "\n"); !strings.Contains(all, tt.wantLine) {
				t.Errorf("progress lacks %q:\n%s", tt.wantLine, all)
			}
			if n := len(tt.host.judged); n > 0 && tt.host.judged[n-1] != 0 {
				t.Errorf("status left at share %v, want the canary ended", tt.host.judged[n-1])
			}
		})
	}
}

// TestWorkersDied: workers of the canary that die during a step make it
// worse, unless the old generation's die too; deaths before the step's
// split do not count.
func TestWorkersDied(t *testing.T) {
	for _, tt := range []struct {
		name      string
		base, now [2]uint64
		worse     bool
	}{
		{"none", [2]uint64{}, [2]uint64{}, false},
		{"one canary worker", [2]uint64{}, [2]uint64{0, 1}, false},
		{"two canary workers", [2]uint64{}, [2]uint64{0, 2}, true},
		{"two, but before the split", [2]uint64{0, 2}, [2]uint64{0, 2}, false},
		{"two since the split", [2]uint64{0, 2}, [2]uint64{0, 4}, true},
		{"old ones die too", [2]uint64{}, [2]uint64{1, 3}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			why := workersDied(tt.base, tt.now)
			if (why != "") != tt.worse || (tt.worse && !strings.Contains(why, "workers died")) {
				t.Errorf("workersDied(%v, %v) = %q, want worse %v", tt.base, tt.now, why, tt.worse)
			}
		})
	}
}

// TestCanaryCancelled: a stop (the reload's ctx ends) during a step rolls
// the canary back at once, whatever the step's length.
func TestCanaryCancelled(t *testing.T) {
	h := &fakeCanaryHost{}
	ctx, cancel := context.WithCancelCause(context.Background())
	stop := errors.New("app web is stopping")
	progress := func(s string) {
		if strings.Contains(s, "gets 10%") {
			cancel(stop)
		}
	}
	_, err := Canary(ctx, h, newGen("old"), strategy.Canary{Steps: []float64{0.1}, For: time.Hour}, progress)
	if !errors.Is(err, stop) {
		t.Fatalf("err %v, want the stop's cause", err)
	}
	want := []string{"spawn ", "ready new", "split old new 10%", "split old new 0%", "abort new"}
	if !reflect.DeepEqual(h.steps, want) {
		t.Errorf("steps:\n got %q\nwant %q", h.steps, want)
	}
}

func TestCanaryNeedsOld(t *testing.T) {
	h := &fakeCanaryHost{}
	if _, err := Canary(context.Background(), h, nil, strategy.Canary{Steps: []float64{0.1}, For: time.Second}, func(string) {}); err == nil || len(h.steps) != 0 {
		t.Fatalf("err %v, steps %q: want a refusal before anything starts", err, h.steps)
	}
}

// TestCanaryViewStatus: status shows the running step's share and
// elapsed time, then the last judgement once the canary ended.
func TestCanaryViewStatus(t *testing.T) {
	var v CanaryView
	if s := v.Status(); s != "" {
		t.Fatalf("status before any canary: %q", s)
	}
	plan := strategy.Canary{Steps: []float64{0.1, 0.5}, For: time.Minute}
	v.Set(2, plan, 0.1, time.Now().Add(-3*time.Second), Judgement{Figures: "generation 2 vs 1: requests 10 vs 90"})
	if s := v.Status(); !strings.HasPrefix(s, "canary: generation 2 gets 10% of new connections, 3s of 1m0s (steps 10%,50%): generation 2 vs 1") {
		t.Errorf("running: %q", s)
	}
	v.Set(2, plan, 0, time.Time{}, Judgement{})
	if s := v.Status(); !strings.HasPrefix(s, "last canary (generation 2, steps 10%,50%): generation 2 vs 1: requests 10 vs 90") {
		t.Errorf("ended: %q", s)
	}
}
