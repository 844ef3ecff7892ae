package core

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

var crashConfig = e2e.Config{}.String() + `
[app.crash]
allow_root = true
kind = "process"
command = ["/bin/false"]
backoff_initial = "50ms"
backoff_max = "400ms"
crash_window = "60s"
crash_limit = 3
`

// TestCrashLoopBackoff: a process that exits 1 at once is restarted with a
// doubling backoff capped at backoff_max, its restarts are counted, it turns
// "failed" after crash_limit exits, and the control socket keeps answering.
func TestCrashLoopBackoff(t *testing.T) {
	t.Parallel() // waits on backoff timers (see TestMain)
	s := e2e.Start(t, e2e.Options{Config: crashConfig})
	var seen []time.Duration // distinct backoffs, in order
	var states []string      // distinct states, in order
	lastRestarts := -1
	var last control.AppStatus
	testenv.WaitFor(t, 60*time.Second, "backoff at its 400ms cap, state failed", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := s.Client().Status(ctx, "crash")
		if err != nil || len(st.Apps) != 1 {
			t.Fatalf("status: %v", err)
		}
		last = st.Apps[0]
		if last.Restarts < lastRestarts {
			t.Fatalf("restarts went down: %d -> %d", lastRestarts, last.Restarts)
		}
		lastRestarts = last.Restarts
		if last.Backoff > 0 && (len(seen) == 0 || seen[len(seen)-1] != last.Backoff) {
			seen = append(seen, last.Backoff)
		}
		if len(states) == 0 || states[len(states)-1] != last.State.String() {
			states = append(states, last.State.String())
		}
		return last.Backoff == 400*time.Millisecond && last.State == control.StateFailed
	})
	t.Logf("backoffs seen %v; states seen %v; restarts=%d last_exit=%v message=%q", seen, states, last.Restarts, last.LastExit, last.Message)
	for i := 1; i < len(seen); i++ {
		if seen[i] < seen[i-1] {
			t.Errorf("backoff went down: %v", seen)
		}
	}
	if seen[0] < 50*time.Millisecond || seen[len(seen)-1] != 400*time.Millisecond {
		t.Errorf("backoffs %v: want from >= 50ms up to the 400ms cap", seen)
	}
	if last.Restarts <= 3 {
		t.Errorf("restarts = %d when failed, want more than crash_limit 3", last.Restarts)
	}
	if last.LastExit == nil || last.LastExit.Code != 1 {
		t.Errorf("last exit %v, want exit 1", last.LastExit)
	}

	// Still retried at the cap: restarts keep increasing, backoff stays 400ms.
	base := last.Restarts
	testenv.WaitFor(t, 30*time.Second, "restarts still increasing", func() bool {
		last = s.App("crash")
		if last.Backoff != 400*time.Millisecond {
			t.Fatalf("backoff left its cap: %s", last.Backoff)
		}
		return last.Restarts >= base+3
	})
	t.Logf("still retried at the cap: restarts %d -> %d, state %s", base, last.Restarts, last.State)

	// The control socket answers while the app crash-loops.
	var max, total time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		out, code := s.SupctlRun("status")
		took := time.Since(start)
		total += took
		if took > max {
			max = took
		}
		if code != 3 || !strings.Contains(out, "crash") { // 3: an app named is not running
			t.Errorf("supctl status #%d: exit %d: %s", i, code, out)
		}
	}
	t.Logf("20 supctl status calls during the crash loop: max %s, mean %s (race-built supctl, shared machine)", max.Round(time.Millisecond), (total / 20).Round(time.Millisecond))
	// The same through the API alone (no process start per call).
	max, total = 0, 0
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		start := time.Now()
		st, err := s.Client().Status(ctx, "")
		took := time.Since(start)
		cancel()
		total += took
		if took > max {
			max = took
		}
		if err != nil || len(st.Apps) != 1 {
			t.Errorf("status #%d: %v", i, err)
		}
	}
	t.Logf("20 API status calls during the crash loop: max %s, mean %s", max.Round(time.Microsecond), (total / 20).Round(time.Microsecond))
}
