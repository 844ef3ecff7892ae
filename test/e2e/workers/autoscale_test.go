package workers

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// TestAutoscaleLoadStep: workers = "2..8" under a load step from 10 to 200
// clients of a route that sleeps 20 ms (two workers serve 100 requests a
// second) scales up from 2 while the accept queue holds, and steps down
// once the load stops; the master never changes and no request fails.
func TestAutoscaleLoadStep(t *testing.T) {
	r := startApp(t, "2..8", "")
	master := r.App("web").MasterPID
	smp := sample(r, 250*time.Millisecond)
	url := r.URL + "/sleep?ms=20"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	low, err := e2e.RunHey(ctx, "-c", "10", "-z", "2s", url)
	if err != nil {
		t.Fatal(err)
	}
	high, err := e2e.RunHey(ctx, "-c", "200", "-z", strconv.Itoa(e2e.Runs(30, 6))+"s", "-t", "30", url)
	if err != nil {
		t.Fatal(err)
	}
	var peak int
	testenv.WaitForState(t, 60*time.Second, "the target to step down after the load", func() (bool, string) {
		m, err := scrape(r.HTTP, "supervisor_app_workers_target")
		if err != nil {
			return false, err.Error()
		}
		cur := int(sumPrefix(m, "supervisor_app_workers_target{"))
		for _, rw := range smp.seen() {
			peak = max(peak, rw.target)
		}
		return peak > 2 && cur < peak, "target " + strconv.Itoa(cur) + ", peak " + strconv.Itoa(peak)
	})
	rows := smp.finish()
	t.Logf("10 clients: %d requests, %d failed, p99 %v; 200 clients: %d requests, %d failed, p99 %v\n%s",
		low.Requests, low.Failed(), low.P99, high.Requests, high.Failed(), high.P99, table(rows))
	if f := low.Failed() + high.Failed(); f != 0 {
		t.Errorf("%d requests failed\n%s%s", f, low.Output, high.Output)
	}
	maxLive := 0
	for _, rw := range rows {
		maxLive = max(maxLive, rw.workers)
	}
	if maxLive <= 2 {
		t.Errorf("at most %d live workers under 200 clients; want more than 2", maxLive)
	}
	if st := r.App("web"); st.MasterPID != master || st.Restarts != 0 {
		t.Errorf("master %d restarts %d; want master %d unchanged and no restart", st.MasterPID, st.Restarts, master)
	}
	if !strings.Contains(r.Output(), "workers scaled") {
		t.Errorf("no step logged\n%s", r.Output())
	}
}
