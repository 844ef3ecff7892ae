package apm

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
)

// synth is a window of generation id: n requests of route "/r" (and
// slow of them on "/slow") taking lat each, errs of them 5xx, all
// satisfied unless frustrated.
type synth struct {
	id, n, errs, frustrated int
	lat, slowLat            time.Duration
	slow                    int
}

func (s synth) window() *window {
	w := &window{gen: &Gen{ID: s.id}, routes: map[string]*hist{"/r": new(hist)}}
	for i := 0; i < s.n; i++ {
		w.requests++
		w.lat.add(s.lat)
		w.routes["/r"].add(s.lat)
		if i < s.errs {
			w.errors++
		}
		if i >= s.frustrated {
			w.satisfied++
		}
	}
	if s.slow > 0 {
		w.routes["/slow"] = new(hist)
		for i := 0; i < s.slow; i++ {
			w.requests++
			w.satisfied++
			w.lat.add(s.slowLat)
			w.routes["/slow"].add(s.slowLat)
		}
	}
	return w
}

func TestJudgeSyntheticWindows(t *testing.T) {
	ms10 := 10 * time.Millisecond
	tests := []struct {
		name     string
		old, cur synth
		worse    string // substring of the one verdict phrase; "" for OK
		enough   bool
	}{
		{"same", synth{id: 1, n: 900, lat: ms10}, synth{id: 2, n: 100, lat: ms10}, "", true},
		{"one error within a point", synth{id: 1, n: 900, errs: 9, lat: ms10}, synth{id: 2, n: 100, errs: 1, lat: ms10}, "", true},
		{"ten percent errors", synth{id: 1, n: 900, lat: ms10}, synth{id: 2, n: 100, errs: 10, lat: ms10}, "error rate 10.00% above 0.00%", true},
		{"errors below the sample floor still judged", synth{id: 1, n: 90, lat: ms10}, synth{id: 2, n: 10, errs: 5, lat: ms10}, "error rate 50.00%", false},
		{"p99 twice and above the floor", synth{id: 1, n: 900, lat: ms10, slow: 50, slowLat: 100 * time.Millisecond},
			synth{id: 2, n: 100, lat: ms10, slow: 50, slowLat: 400 * time.Millisecond}, "/slow p99", true},
		{"p99 twice but under the floor", synth{id: 1, n: 900, lat: time.Millisecond}, synth{id: 2, n: 100, lat: 3 * time.Millisecond}, "", true},
		{"apdex drop", synth{id: 1, n: 900, lat: ms10}, synth{id: 2, n: 100, frustrated: 20, lat: ms10}, "apdex 0.80 below 1.00", true},
		{"canary idle", synth{id: 1, n: 900, lat: ms10}, synth{id: 2}, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := 500 * time.Millisecond
			v := judge(tt.old.window(), tt.cur.window(), Thresholds{}.withDefaults(at), at)
			if tt.worse == "" && !v.OK() {
				t.Fatalf("worse %q, want OK; figures %s", v.Worse, v.Figures)
			}
			if tt.worse != "" && (len(v.Worse) != 1 || !strings.Contains(v.Worse[0], tt.worse)) {
				t.Fatalf("worse %q, want one containing %q; figures %s", v.Worse, tt.worse, v.Figures)
			}
			if v.Enough != tt.enough {
				t.Errorf("enough = %v, want %v (requests %d)", v.Enough, tt.enough, v.Requests)
			}
			if !strings.HasPrefix(v.Figures, "generation 2 vs 1: requests ") {
				t.Errorf("figures %q", v.Figures)
			}
		})
	}
}

func TestThresholdsDefaults(t *testing.T) {
	got := Thresholds{ErrorRise: 0.05}.withDefaults(time.Second)
	want := Thresholds{ErrorRise: 0.05, P99Factor: 1.5, P99Floor: 200 * time.Millisecond, ApdexDrop: 0.1, MinRequests: 50}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

// TestJudgeCanaryMissing: without route metrics (nil App) nothing is worse;
// a generation the App does not know (it exited) is worse and ends the
// canary.
func TestJudgeCanaryMissing(t *testing.T) {
	var none *App
	if v := none.JudgeCanary(1, 2, time.Now(), config.CanaryLimits{}); !v.OK() || v.Enough || v.Figures != "no route metrics" {
		t.Errorf("nil App: %+v", v)
	}
	s := NewSet(Options{})
	a := testApp(s)
	a.Gen(1, 6, filepath.Join(t.TempDir(), "r1"), nil)
	v := a.JudgeCanary(1, 2, time.Now(), config.CanaryLimits{})
	if v.OK() || !v.Enough || !strings.Contains(v.Worse[0], "generation 2 or 1 has no route metrics") {
		t.Errorf("unknown canary generation: %+v", v)
	}
}
