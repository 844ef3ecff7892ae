//go:build soak

// The deploy soak runs by hand, not with the suite: make soak.

package reload

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// usage is the supervisor's resource use at one moment.
type usage struct {
	RSSKiB, FDs, Threads, Goroutines int
	// HeapKiB is go_memstats_heap_inuse_bytes / 1024, HeapObjects
	// go_memstats_heap_objects: the Go heap without the race detector's
	// shadow memory, which RSS includes.
	HeapKiB, HeapObjects int
}

func (u usage) String() string {
	return fmt.Sprintf("VmRSS %d KiB, %d fds, %d threads, %d goroutines, heap in use %d KiB, %d heap objects",
		u.RSSKiB, u.FDs, u.Threads, u.Goroutines, u.HeapKiB, u.HeapObjects)
}

// measure reads the supervisor's VmRSS, fd count and threads from /proc and
// go_goroutines from its metrics endpoint, 10 times 50 ms apart, and keeps
// the smallest value of each: the quiescent use, without the health check
// or control connection that happens to be open at one instant.
func (w *web) measure(t *testing.T, metrics string) usage {
	t.Helper()
	pid := w.Cmd.Process.Pid
	var m usage
	for i := 0; i < 10; i++ {
		if i > 0 {
			time.Sleep(50 * time.Millisecond) // sampling interval, not synchronisation
		}
		st, err := procStatus(pid, "VmRSS", "Threads")
		if err != nil {
			t.Fatal(err)
		}
		fdMap, err := testenv.FDs(pid)
		if err != nil {
			t.Fatal(err)
		}
		fds := len(fdMap)
		g, err := scrapeGauges("http://"+metrics+"/metrics", "go_goroutines", "go_memstats_heap_inuse_bytes", "go_memstats_heap_objects")
		if err != nil {
			t.Fatal(err)
		}
		u := usage{RSSKiB: st["VmRSS"], FDs: fds, Threads: st["Threads"], Goroutines: int(g[0]), HeapKiB: int(g[1] / 1024), HeapObjects: int(g[2])}
		if i == 0 {
			m = u
			continue
		}
		m = usage{min(m.RSSKiB, u.RSSKiB), min(m.FDs, u.FDs), min(m.Threads, u.Threads), min(m.Goroutines, u.Goroutines),
			min(m.HeapKiB, u.HeapKiB), min(m.HeapObjects, u.HeapObjects)}
	}
	return m
}

// scrapeGauges returns the values of unlabelled metrics, in order.
func scrapeGauges(url string, names ...string) ([]float64, error) {
	return e2e.ScrapeGauges(url, names...)
}

// TestReloadLeak runs 100 swap deploys (alternating two releases, one
// worker) under light load and checks that the supervisor's RSS, open fds, threads and
// goroutines at reload 100 are within 10% of reload 10, and that no zombie
// is left. For the small counts at least 2 more are tolerated (Go keeps the
// threads a burst of blocking system calls made). Under -race the
// supervisor's RSS grows by about 10% over 100 reloads while its heap stays
// flat (the race runtime's per-goroutine metadata; measured: +10.4% with
// -race, +2.2% without), so the RSS limit is 25% there.
func TestReloadLeak(t *testing.T) {
	// 100 reloads take 4 to 8 minutes on two busy cores: skip rather than
	// let go test's default 10-minute timeout end the whole package.
	if dl, ok := t.Deadline(); ok && time.Until(dl) < 9*time.Minute {
		t.Skipf("needs about 9 minutes of the test timeout and %v is left: run with -timeout 30m", time.Until(dl).Round(time.Second))
	}
	const n, base = 100, 10
	// One worker and one health pass keep each reload short.
	w := startWeb(t, webOpts{HTTP: "127.0.0.1:0", Releases: versions(2), Workers: 1, HealthyAfter: 1})
	metrics := w.metricsAddr()
	load := e2e.StartLoad("tcp", w.Addr, "/", 2)
	defer load.Stop()

	var at10 usage
	var took []time.Duration
	for i := 1; i <= n; i++ {
		want := "version=v" + strconv.Itoa(i%2) + "\n"
		r := w.Ctl("deploy", "web", w.Dirs[i%2])
		if r.Code != 0 {
			t.Fatalf("deploy %d: exit %d:\n%s", i, r.Code, r.Out)
		}
		took = append(took, r.Took)
		if stale := probe(w.Addr, want, 3); len(stale) != 0 {
			t.Errorf("deploy %d: answers not %q: %v", i, want, stale)
		}
		if i%10 == 0 || i == 1 {
			u := w.measure(t, metrics)
			t.Logf("after reload %3d: %s", i, u)
			if i == base {
				at10 = u
			}
			if i == n {
				for _, c := range []struct {
					what           string
					at10, now, abs int
				}{{"VmRSS", at10.RSSKiB, u.RSSKiB, rssSlack(at10.RSSKiB)}, {"fds", at10.FDs, u.FDs, 2}, {"threads", at10.Threads, u.Threads, 2}, {"goroutines", at10.Goroutines, u.Goroutines, 2}} {
					limit := max(float64(c.at10)*1.10, float64(c.at10+c.abs))
					if float64(c.now) > limit {
						t.Errorf("%s grew from %d at reload %d to %d at reload %d (limit %.0f)", c.what, c.at10, base, c.now, n, limit)
					}
				}
			}
		}
	}
	var tr tree
	testenv.WaitFor(t, 10*time.Second, "one generation, no zombie", func() bool {
		var bad string
		tr, bad = w.oneGeneration(1)
		return bad == ""
	})
	res := load.Stop()
	med, mx := stats(took)
	t.Logf("%d deploys: duration median %v max %v; tree %s; load %s", n, med.Round(time.Millisecond), mx.Round(time.Millisecond), tr, res)
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
}

// rssSlack is how many KiB of RSS growth beyond 10% TestReloadLeak allows.
func rssSlack(at10 int) int {
	if e2e.RaceEnabled {
		return at10 / 4
	}
	return 0
}

// procStatus reads fields (in kB or counts) of /proc/PID/status.
func procStatus(pid int, keys ...string) (map[string]int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(keys, k) {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.Atoi(fs[0])
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		out[k] = n
	}
	return out, sc.Err()
}

var listeningRE = regexp.MustCompile(`msg="?Listening on"? address=(127\.0\.0\.1:\d+)`)

// metricsAddr finds the metrics listener's address in the supervisor's log
// (exporter-toolkit logs "Listening on" with the bound address).
func (w *web) metricsAddr() string {
	w.t.Helper()
	var addr string
	testenv.WaitFor(w.t, 20*time.Second, "metrics listener in the log", func() bool {
		if m := listeningRE.FindStringSubmatch(w.Output()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	return addr
}
