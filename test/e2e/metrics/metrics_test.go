package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// webApp selects the series of the app "web".
var webApp = map[string]string{"app": "web"}

// TestPrometheus runs one supervisor whose app serves load and checks its
// live /metrics with promtool, then with a real Prometheus scraping it every
// second.
func TestPrometheus(t *testing.T) {
	w := startWeb(t, webOpts{})
	load := e2e.StartLoad("tcp", w.Addr("web"), "/", 4)
	defer func() { t.Logf("load: %s", load.Stop()) }()
	testenv.WaitFor(t, 60*time.Second, "requests in the duration histogram", func() bool {
		sc, err := tryScrape(w.HTTP)
		if err != nil {
			return false
		}
		h, ok := sc.histogram("supervisor_http_request_duration_seconds", webApp)
		return ok && h.Count >= 100
	})

	t.Run("promtool", func(t *testing.T) {
		sc := scrapeMetrics(t, w.HTTP)
		h, _ := sc.histogram("supervisor_http_request_duration_seconds", webApp)
		cmd := exec.Command("promtool", "check", "metrics")
		cmd.Stdin = strings.NewReader(sc.Raw)
		out, err := cmd.CombinedOutput()
		t.Logf("promtool check metrics on %d bytes, %d families, %.0f requests in the histogram: exit %v, output %q",
			len(sc.Raw), len(sc.Families), h.Count, err, out)
		if err != nil || len(bytes.TrimSpace(out)) != 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})

	t.Run("scrape", func(t *testing.T) {
		p := startPrometheus(t, w.HTTP)
		start := time.Now()
		const q = `rate(supervisor_http_requests_total[1m]) > 0`
		var res []vectorSample
		var lastErr error
		testenv.WaitFor(t, 90*time.Second, "Prometheus answering "+q, func() bool {
			res, lastErr = p.query(q)
			return lastErr == nil && len(res) > 0
		})
		t.Logf("Prometheus at %s answered %s after %s: %v", p.Addr, q, time.Since(start).Round(time.Millisecond), res)
		for _, s := range res {
			if s.Metric["app"] != "web" || s.Metric["job"] != "supervisor" {
				t.Errorf("series %v: want app=web, job=supervisor", s.Metric)
			}
		}
		up, err := p.query(`up{job="supervisor"}`)
		if err != nil || len(up) != 1 || up[0].Value[1] != "1" {
			t.Errorf("up{job=supervisor} = %v (%v); want 1", up, err)
		}
		p.Stop()
		if lastErr != nil {
			t.Logf("last query error: %v", lastErr)
		}
	})
}

// TestRequestCountAndLatency runs hey against the app (no health check, so
// only hey's requests reach it) and compares what the supervisor bridged
// from Gunicorn's statsd stream with what hey saw. Each request sleeps
// appMillis in the app so that the time Gunicorn measures dominates what
// hey measures: connect, accept-queue wait and scheduling on a shared
// machine are invisible to Gunicorn and would otherwise decide the tail.
func TestRequestCountAndLatency(t *testing.T) {
	const requests = 2000
	const appMillis = 15
	w := startWeb(t, webOpts{Variant: testenv.Slow})
	addr := w.Addr("web")
	// The readiness probe's GET / is counted too: wait until it shows, then
	// take the baseline.
	var before scrape
	testenv.WaitFor(t, 30*time.Second, "readiness probe counted", func() bool {
		sc, err := tryScrape(w.HTTP)
		if err != nil {
			return false
		}
		before = sc
		n, _ := sc.sum("supervisor_http_requests_total", webApp)
		return n >= 1
	})
	countBefore, _ := before.sum("supervisor_http_requests_total", webApp)
	histBefore, _ := before.histogram("supervisor_http_request_duration_seconds", webApp)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	url := fmt.Sprintf("http://%s/?ms=%d", addr, appMillis)
	hey, err := e2e.RunHey(ctx, "-n", fmt.Sprint(requests), "-c", "2", url)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("hey -n %d -c 2 %s: %d requests in %s, status %v, errors %v, p50 %s, p99 %s",
		requests, url, hey.Requests, took.Round(time.Millisecond), hey.Status, hey.Errors, hey.P50, hey.P99)
	if hey.Requests != requests || hey.Failed() != 0 {
		t.Fatalf("hey: %d requests, %d failed; want %d, 0:\n%s", hey.Requests, hey.Failed(), requests, hey.Output)
	}

	// statsd is UDP: give the last datagrams a moment to arrive, then judge
	// whatever arrived (loss is what the 1% tolerance is for).
	var after scrape
	var delta float64
	arrived := func() bool {
		sc, err := tryScrape(w.HTTP)
		if err != nil {
			return false
		}
		after = sc
		n, _ := sc.sum("supervisor_http_requests_total", webApp)
		delta = n - countBefore
		return delta >= requests
	}
	testenv.Poll(15*time.Second, arrived)
	if after.Families == nil {
		t.Fatal("no scrape after the run")
	}
	t.Logf("supervisor_http_requests_total{app=web}: before %.0f, after %.0f, delta %.0f for %d requests (%.2f%% off)",
		countBefore, countBefore+delta, delta, requests, 100*math.Abs(delta-requests)/requests)
	if math.Abs(delta-requests) > requests/100 {
		t.Errorf("request counter moved by %.0f; want %d within 1%%", delta, requests)
	}

	histAfter, ok := after.histogram("supervisor_http_request_duration_seconds", webApp)
	if !ok {
		t.Fatal("no supervisor_http_request_duration_seconds{app=web}")
	}
	h, err := histAfter.minus(histBefore)
	if err != nil {
		t.Fatal(err)
	}
	p99 := h.quantile(0.99)
	heyP99 := hey.P99.Seconds()
	bi, hi := h.bucketIndex(p99), h.bucketIndex(heyP99)
	t.Logf("p99: supervisor histogram %.4fs (bucket le=%g, %.0f observations, mean %.4fs), hey %.4fs (bucket le=%g); buckets %v, counts %v",
		p99, h.Bounds[bi], h.Count, h.Sum/h.Count, heyP99, h.Bounds[hi], h.Bounds, h.Counts)
	if d := bi - hi; d < -1 || d > 1 {
		t.Errorf("p99 from the histogram (%.4fs) and from hey (%.4fs) are %d buckets apart; want at most 1", p99, heyP99, d)
	}
}

// TestListenerQueue freezes every process of the serving generation and
// sends connections to the held listener: they wait in its accept queue,
// which supervisor_listener_queue_length must show, and drain once the
// generation runs again.
func TestListenerQueue(t *testing.T) {
	for _, tc := range []struct {
		name, listen, network string
	}{
		{"tcp", "tcp://127.0.0.1:0", "tcp"},
		{"unix", "unix://@DIR@/web.sock", "unix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := startWeb(t, webOpts{Listen: tc.listen})
			app := w.WaitState("web", control.StateRunning, 30*time.Second)
			addr := app.Listeners[0].Bound
			queue := func() (float64, bool) {
				sc, err := tryScrape(w.HTTP)
				if err != nil {
					return 0, false
				}
				return sc.sum("supervisor_listener_queue_length", webApp)
			}
			qmax, _ := scrapeMetrics(t, w.HTTP).sum("supervisor_listener_queue_max", webApp)
			q0, ok := queue()
			if !ok {
				t.Fatalf("no supervisor_listener_queue_length{app=web} for %s", addr)
			}
			t.Logf("%s listener %s: queue %.0f of max %.0f before the freeze", tc.network, addr, q0, qmax)

			freeze(t, app)
			const conns = 10
			clients := make([]net.Conn, 0, conns)
			defer func() {
				for _, c := range clients {
					_ = c.Close() // the test's own client sockets
				}
			}()
			for range conns {
				c, err := net.DialTimeout(tc.network, addr, 10*time.Second)
				if err != nil {
					t.Fatalf("dial %s: %v", addr, err)
				}
				clients = append(clients, c)
				if _, err := io.WriteString(c, "GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"); err != nil {
					t.Fatalf("write request to %s: %v", addr, err)
				}
			}
			var q float64
			start := time.Now()
			testenv.WaitFor(t, 30*time.Second, "queue length above 0", func() bool {
				q, _ = queue()
				return q > 0
			})
			t.Logf("frozen, %d connections sent: supervisor_listener_queue_length %.0f after %s", conns, q, time.Since(start).Round(time.Millisecond))
			if q != conns {
				t.Logf("note: queue length %.0f, %d connections sent", q, conns)
			}

			thaw(t, app)
			start = time.Now()
			testenv.WaitFor(t, 60*time.Second, "queue length back to 0", func() bool {
				q, _ = queue()
				return q == 0
			})
			t.Logf("after SIGCONT: queue length 0 after %s", time.Since(start).Round(time.Millisecond))
			for i, c := range clients {
				if err := c.SetReadDeadline(time.Now().Add(30 * time.Second)); err != nil {
					t.Fatal(err)
				}
				b, err := io.ReadAll(c)
				if err != nil || !strings.HasPrefix(string(b), "HTTP/1.") || !strings.Contains(string(b), " 200 ") {
					t.Errorf("connection %d: %v, answer %.100q", i, err, b)
				}
			}
			if tc.network != "unix" {
				return
			}
			// The path must survive a generation's exit (see supervise/spawn.go
			// on SO_REUSEPORT and systemd mode).
			if out, code := w.SupctlRun("restart", "web"); code != 0 {
				t.Fatalf("supctl restart web: exit %d: %s", code, out)
			}
			w.WaitState("web", control.StateRunning, 60*time.Second)
			if st, body, err := testenv.GetUnix(addr, "/"); err != nil || st != http.StatusOK {
				t.Errorf("GET / over %s after a restart: %d %q %v", addr, st, body, err)
			}
		})
	}
}

// freeze stops the generation's master and every worker (SIGSTOP to the
// process group the supervisor gives each generation) and waits until each
// is stopped. The test's cleanup continues them in any case.
func freeze(t *testing.T, app control.AppStatus) {
	t.Helper()
	pgid, err := syscall.Getpgid(app.MasterPID)
	if err != nil || pgid != app.MasterPID {
		t.Fatalf("master %d: process group %d (%v); want its own", app.MasterPID, pgid, err)
	}
	pids := append([]int{app.MasterPID}, app.WorkerPIDs...)
	if len(app.WorkerPIDs) == 0 {
		t.Fatalf("no worker pids in %+v", app)
	}
	t.Cleanup(func() { _ = syscall.Kill(-pgid, syscall.SIGCONT) }) // harmless when already running
	if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
		t.Fatalf("SIGSTOP process group %d: %v", pgid, err)
	}
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("pids %v stopped", pids), func() bool {
		for _, pid := range pids {
			if st, err := testenv.ReadStat(pid); err != nil || st.State != 'T' {
				return false
			}
		}
		return true
	})
	t.Logf("froze master %d and workers %v", app.MasterPID, app.WorkerPIDs)
}

// thaw continues the generation frozen by freeze.
func thaw(t *testing.T, app control.AppStatus) {
	t.Helper()
	if err := syscall.Kill(-app.MasterPID, syscall.SIGCONT); err != nil {
		t.Fatalf("SIGCONT process group %d: %v", app.MasterPID, err)
	}
}

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat
// (fixed at 100 on Linux whatever the kernel's HZ).
const clockTicks = 100

// TestIdleCPU scrapes /metrics once a second for 10 s from a supervisor
// with one idle Gunicorn app and reports the supervisor's own CPU time as a
// share of one core. Only a very loose bound is asserted (the machine is
// shared, the binary may carry the race detector); the figure is logged.
func TestIdleCPU(t *testing.T) {
	const scrapes = 10
	w := startWeb(t, webOpts{})
	pid := w.Cmd.Process.Pid
	scrapeMetrics(t, w.HTTP) // first scrape outside the window (lazy init)
	t0, err := testenv.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var bytesRead int
	for range scrapes {
		<-tick.C
		bytesRead += len(scrapeMetrics(t, w.HTTP).Raw)
	}
	wall := time.Since(start)
	t1, err := testenv.ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	cpu := time.Duration(t1.CPUTicks-t0.CPUTicks) * time.Second / clockTicks
	pct := 100 * cpu.Seconds() / wall.Seconds()
	t.Logf("supervisor pid %d (race detector: %v): %d scrapes (%d bytes each) in %s used %s CPU (%s per scrape) = %.2f%% of one core",
		pid, e2e.RaceEnabled, scrapes, bytesRead/scrapes, wall.Round(time.Millisecond), cpu, cpu/scrapes, pct)
	if pct >= 20 {
		t.Errorf("supervisor used %.2f%% of a core while idle with a 1 s scrape; want well under 1%% (bound 20%% on a shared machine)", pct)
	}
}

// readiness is the /readyz body.
type readiness struct {
	Ready bool              `json:"ready"`
	Apps  map[string]string `json:"apps"`
}

// TestReadyzFollowsHealth makes the app's /healthz fail (a flag file) and
// checks /readyz turns 503 naming the app within a few check intervals, and
// 200 again once the app recovers, while /healthz (the supervisor's own
// liveness) stays 200.
func TestReadyzFollowsHealth(t *testing.T) {
	const interval = time.Second
	w := startWeb(t, webOpts{Flagged: true, Health: `path = "/healthz"
interval = "1s"
timeout = "1s"
healthy_after = 1
unhealthy_after = 1
restart_when_unhealthy = false`})
	readyz := func() (int, readiness, error) {
		st, body, err := get(w.HTTP, "/readyz")
		if err != nil {
			return 0, readiness{}, err
		}
		var r readiness
		if err := json.Unmarshal([]byte(body), &r); err != nil {
			return st, r, fmt.Errorf("/readyz body %q: %w", body, err)
		}
		return st, r, nil
	}
	st, r, err := readyz()
	if err != nil || st != http.StatusOK || !r.Ready {
		t.Fatalf("/readyz of a healthy app: %d %+v %v; want 200 ready", st, r, err)
	}
	checkLive(t, w.HTTP)

	if err := os.WriteFile(w.Flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	testenv.WaitFor(t, 60*time.Second, "/readyz 503", func() bool {
		st, r, err = readyz()
		return err == nil && st == http.StatusServiceUnavailable
	})
	took := time.Since(start)
	t.Logf("/readyz 503 %+v %s after the app's /healthz started failing (interval %s, unhealthy_after 1)", r, took.Round(time.Millisecond), interval)
	if bound := 3*interval + 2*time.Second; took > bound {
		t.Errorf("/readyz turned 503 after %s; want within %s", took, bound)
	}
	if r.Ready || r.Apps["web"] != "unhealthy" {
		t.Errorf("/readyz body %+v; want ready=false, apps web=unhealthy", r)
	}
	if up, _ := scrapeMetrics(t, w.HTTP).sum("supervisor_health_up", webApp); up != 0 {
		t.Errorf("supervisor_health_up{app=web} = %v while unhealthy; want 0", up)
	}
	checkLive(t, w.HTTP)
	if app := w.App("web"); app.State != control.StateRunning || app.Healthy {
		t.Errorf("status while unhealthy: state %s healthy %v; want running, false", app.State, app.Healthy)
	}

	if err := os.Remove(w.Flag); err != nil {
		t.Fatal(err)
	}
	start = time.Now()
	testenv.WaitFor(t, 60*time.Second, "/readyz 200", func() bool {
		st, r, err = readyz()
		return err == nil && st == http.StatusOK
	})
	t.Logf("/readyz 200 %+v %s after the app recovered", r, time.Since(start).Round(time.Millisecond))
	if !r.Ready || len(r.Apps) != 0 {
		t.Errorf("/readyz body %+v after recovery; want ready=true and no apps", r)
	}
	if up, _ := scrapeMetrics(t, w.HTTP).sum("supervisor_health_up", webApp); up != 1 {
		t.Errorf("supervisor_health_up{app=web} = %v after recovery; want 1", up)
	}
	checkLive(t, w.HTTP)
}

// checkLive asserts the supervisor's own /healthz answers 200 "ok".
func checkLive(t *testing.T, addr string) {
	t.Helper()
	st, body, err := get(addr, "/healthz")
	if err != nil || st != http.StatusOK || strings.TrimSpace(body) != "ok" {
		t.Errorf("/healthz: %d %q %v; want 200 ok", st, body, err)
	}
}
