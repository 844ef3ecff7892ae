package workers

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// workersArg finds Gunicorn's --workers N in a command line.
var workersArg = regexp.MustCompile(`--workers (\d+)`)

// TestReloadStartsAtTarget: a reload of an app scaled up under load
// starts its new master with --workers at the current target rather than
// the range's minimum, so capacity does not collapse; no request fails.
func TestReloadStartsAtTarget(t *testing.T) {
	r := startApp(t, "2..6", "")
	old := r.App("web").MasterPID
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type heyResult struct {
		h   e2e.Hey
		err error
	}
	done := make(chan heyResult, 1)
	go func() {
		h, err := e2e.RunHey(ctx, "-c", "100", "-z", "10s", "-t", "30", r.URL+"/sleep?ms=20")
		done <- heyResult{h, err}
	}()
	var target int
	testenv.WaitForState(t, 30*time.Second, "the target to reach 4 under load", func() (bool, string) {
		m, err := scrape(r.HTTP, "supervisor_app_workers_target")
		if err != nil {
			return false, err.Error()
		}
		target = int(sumPrefix(m, "supervisor_app_workers_target{"))
		return target >= 4, fmt.Sprintf("target %d", target)
	})
	rl := r.Ctl("reload", "web")
	if rl.Code != 0 {
		t.Fatalf("supctl reload: exit %d\n%s", rl.Code, rl.Out)
	}
	st := r.App("web")
	if st.MasterPID == old {
		t.Fatalf("master %d after the reload; want a new one", st.MasterPID)
	}
	cmd, err := testenv.Cmdline(st.MasterPID)
	if err != nil {
		t.Fatal(err)
	}
	m := workersArg.FindStringSubmatch(cmd)
	if m == nil {
		t.Fatalf("new master's command line has no --workers: %s", cmd)
	}
	if n, _ := strconv.Atoi(m[1]); n < target {
		t.Errorf("new master started with --workers %d; want at least the target %d it was reloaded at", n, target)
	}
	res := <-done
	if res.err != nil {
		t.Fatal(res.err)
	}
	t.Logf("target %d at the reload (took %v), new master %s; %d requests, %d failed, p99 %v", target, rl.Took.Round(time.Millisecond), m[0], res.h.Requests, res.h.Failed(), res.h.P99)
	if res.h.Failed() != 0 {
		t.Errorf("%d requests failed\n%s", res.h.Failed(), res.h.Output)
	}
}
