//go:build soak

package faults

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
)

// resources is the supervisor's use at one moment, from its /metrics.
type resources struct {
	RSS        float64 // process_resident_memory_bytes
	FDs        float64 // process_open_fds
	Goroutines float64 // go_goroutines
}

func (r resources) String() string {
	return fmt.Sprintf("RSS %.1f MiB, %.0f open fds, %.0f goroutines", r.RSS/(1<<20), r.FDs, r.Goroutines)
}

// measure scrapes url 10 times 50 ms apart and keeps the smallest value of
// each gauge: the quiescent use, without a connection that happens to be
// open at one instant.
func measure(t *testing.T, url string) resources {
	t.Helper()
	var m resources
	for i := 0; i < 10; i++ {
		v, err := e2e.ScrapeGauges(url, "process_resident_memory_bytes", "process_open_fds", "go_goroutines")
		if err != nil {
			t.Fatal(err)
		}
		r := resources{v[0], v[1], v[2]}
		if i == 0 {
			m = r
		}
		m = resources{min(m.RSS, r.RSS), min(m.FDs, r.FDs), min(m.Goroutines, r.Goroutines)}
		time.Sleep(50 * time.Millisecond) // sampling interval
	}
	return m
}

// TestSoak deploys two releases alternately SOAK_RELOADS times (default
// 1,000) under load (make soak). It prints the failed requests (target 0)
// and the supervisor's RSS, open fds and goroutines after the first 10
// reloads and at the end (target: within 10 %, and for the counts within
// 10 % plus one).
func TestSoak(t *testing.T) {
	n := 1000
	if s := os.Getenv("SOAK_RELOADS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 20 {
			t.Fatalf("SOAK_RELOADS=%q: want a number of at least 20", s)
		}
	}
	f := start(t, opts{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	st, err := f.Client().Status(ctx, "")
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + st.Supervisor.HTTP + "/metrics"
	rels := []string{f.release("web", "v1", false), f.release("web", "v2", false)}
	l := f.load("web")
	var first resources
	began := time.Now()
	for i := 0; i < n; i++ {
		if i == 10 {
			first = measure(t, url)
		}
		out, code := f.SupctlRun("deploy", "web", rels[i%2])
		if code != 0 {
			t.Fatalf("deploy %d of %d: exit %d:\n%s", i+1, n, code, out)
		}
		if (i+1)%100 == 0 {
			t.Logf("%d deploys in %v; load so far: %d ok, %d failed", i+1, time.Since(began).Round(time.Second), l.Snapshot().OK, l.Snapshot().Failed())
		}
	}
	last := measure(t, url)
	res := l.Stop()
	t.Logf("%d deploys in %v", n, time.Since(began).Round(time.Second))
	t.Logf("failed requests: %d of %d (%s)", res.Failed(), res.Requests, res)
	t.Logf("supervisor after 10 deploys: %s", first)
	t.Logf("supervisor at the end:      %s", last)
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
	if last.RSS > first.RSS*1.10 {
		t.Errorf("RSS grew %.1f%%", 100*(last.RSS/first.RSS-1))
	}
	if last.FDs > first.FDs*1.10+1 || last.Goroutines > first.Goroutines*1.10+1 {
		t.Errorf("fds %.0f -> %.0f, goroutines %.0f -> %.0f: not flat", first.FDs, last.FDs, first.Goroutines, last.Goroutines)
	}
	f.assertTracked()
}
