package workers

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
)

// rssLimitMiB is the tests' max_worker_rss: a worker of the test app
// boots at about 35 MiB, so each lives for a handful of /leak requests.
const rssLimitMiB = 60

// TestRecycleLeakingWorker: with max_worker_rss = "60MiB", a worker that
// keeps 5 MiB per request is sent TERM once over the limit, finishes its
// request and is replaced by Gunicorn's master: every request answers
// 200, the master and the restart count stay as they were, the recycled
// counter grows, and the largest worker stays within a bound of the
// limit. The soak (TestRecycleSoak) runs the same load for 10 minutes.
func TestRecycleLeakingWorker(t *testing.T) {
	recycleUnderLoad(t, "-n", strconv.Itoa(e2e.Runs(1000, 160)))
}

// recycleUnderLoad runs hey with length (-n N or -z D) at 2 clients of 4
// requests a second each against /leak of an app with two workers and
// max_worker_rss = rssLimitMiB, and checks the outcome (see
// TestRecycleLeakingWorker).
func recycleUnderLoad(t *testing.T, length ...string) {
	r := startApp(t, "2", "max_worker_rss = \""+strconv.Itoa(rssLimitMiB)+"MiB\"\n")
	master := r.App("web").MasterPID
	smp := sample(r, 100*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	h, err := e2e.RunHey(ctx, append(length, "-c", "2", "-q", "4", "-t", "30", r.URL+"/leak")...)
	rows := smp.finish()
	if err != nil {
		t.Fatal(err)
	}
	m, err := scrape(r.HTTP, "supervisor_worker_recycled_total")
	if err != nil {
		t.Fatal(err)
	}
	recycled := int(m[`supervisor_worker_recycled_total{app="web",reason="rss"}`])
	peak := 0
	for _, rw := range rows {
		peak = max(peak, rw.maxRSS)
	}
	t.Logf("%d requests, %d failed, p99 %v; %d workers recycled; largest worker RSS %d MiB (limit %d MiB) over %d samples",
		h.Requests, h.Failed(), h.P99, recycled, peak, rssLimitMiB, len(rows))
	if h.Failed() != 0 {
		t.Errorf("%d requests failed\n%s", h.Failed(), h.Output)
	}
	if recycled == 0 || !strings.Contains(r.Output(), "worker recycled") {
		t.Errorf("no worker recycled (counter %d)\n%s", recycled, r.Output())
	}
	// Bounded: without recycling a worker would grow by 5 MiB for each of
	// half the requests (435 MiB for 160). The bound leaves room for the
	// samples over the limit that a loaded machine takes to see.
	if bound := 5 * rssLimitMiB; peak > bound {
		t.Errorf("largest worker RSS %d MiB; want at most %d MiB\n%s", peak, bound, table(rows))
	}
	if st := r.App("web"); st.MasterPID != master || st.Restarts != 0 {
		t.Errorf("master %d restarts %d; want master %d unchanged and no restart", st.MasterPID, st.Restarts, master)
	}
}
