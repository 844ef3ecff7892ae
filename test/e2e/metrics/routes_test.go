package metrics

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// routesApp is a Flask app of five routes, two of them parameterised (one
// by UUID); every route sleeps ?ms=N milliseconds, and /report sleeps
// SLOW_MS more (a release with a slower route).
const routesApp = `import time, uuid

from flask import Flask, request

SLOW_MS = %d

app = Flask(__name__)


def pause(extra=0):
    time.sleep((int(request.args.get("ms", "0")) + extra) / 1000.0)


@app.route("/")
def index():
    pause()
    return "ok\n"


@app.route("/about")
def about():
    pause()
    return "about\n"


@app.route("/report")
def report():
    pause(SLOW_MS)
    return "report\n"


@app.route("/items/<int:item>")
def item(item):
    pause()
    return "item %%d\n" %% item


@app.route("/users/<uuid:user>")
def user(user):
    pause()
    return "user %%s\n" %% user
`

// writeRoutesApp writes routesApp into dir with /report slowed by slowMS.
func writeRoutesApp(t *testing.T, dir string, slowMS int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(fmt.Sprintf(routesApp, slowMS)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startRoutes starts a supervisor whose app web serves routesApp from the
// release link DIR/current (-> DIR/releases/a, /report not slowed), with
// the app table's extra keys.
func startRoutes(t *testing.T, extra string) *web {
	t.Helper()
	app := e2e.App{Workers: 4, Directory: "@DIR@/current", Extra: extra}
	cfg := e2e.Config{HTTP: "127.0.0.1:0", ShutdownTimeout: "30s", Apps: []e2e.App{app}}.String()
	s := e2e.Start(t, e2e.Options{Config: cfg, Setup: func(dir string) {
		writeRoutesApp(t, filepath.Join(dir, "releases", "a"), 0)
		if err := os.Symlink(filepath.Join(dir, "releases", "a"), filepath.Join(dir, "current")); err != nil {
			t.Fatal(err)
		}
	}})
	w := &web{Supervisor: s}
	s.WaitState("web", control.StateRunning, 90*time.Second)
	w.HTTP = metricsAddr(t, s)
	return w
}

// routeTarget is one URL hey drives and the route it must count under.
type routeTarget struct {
	path, route string
}

// TestRouteMetrics drives the five routes with hey (two ids of each
// parameterised route, so that collapsing is what keeps the cardinality at
// five) and checks the per-route counts, the route set, the latency
// histogram of one route against hey's percentiles, promtool, queue time,
// and that the app's own access log (--access-logfile -) is unchanged.
func TestRouteMetrics(t *testing.T) {
	perURL := e2e.Runs(2000, 200)
	w := startRoutes(t, "args = [\"--access-logfile\", \"-\"]\n")
	addr := w.Addr("web")
	targets := []routeTarget{
		{"/", "/"}, {"/about", "/about"}, {"/report", "/report"},
		{"/items/17", "/items/:id"}, {"/items/4242", "/items/:id"},
		{"/users/0b6c3f5e-5a1d-4c61-9f7e-2d3c4b5a6f70", "/users/:id"},
		{"/users/8d1e2f3a-0000-4c61-9f7e-2d3c4b5a6f71", "/users/:id"},
	}
	// The readiness probe's GET / is counted too: take the baseline once
	// it shows.
	var before scrape
	testenv.WaitFor(t, 30*time.Second, "readiness probe counted", func() bool {
		sc, err := tryScrape(w.HTTP)
		if err != nil {
			return false
		}
		before = sc
		n, _ := sc.sum("supervisor_route_requests_total", webApp)
		return n >= 1
	})
	runHeys(t, addr, targets, perURL)

	want := map[string]float64{}
	for _, tg := range targets {
		want[tg.route] += float64(perURL)
	}
	var after scrape
	testenv.Poll(15*time.Second, func() bool {
		sc, err := tryScrape(w.HTTP)
		if err != nil {
			return false
		}
		after = sc
		n, _ := sc.sum("supervisor_route_requests_total", webApp)
		b, _ := before.sum("supervisor_route_requests_total", webApp)
		return n-b >= float64(perURL*len(targets))
	})
	routes := after.labelValues("supervisor_route_requests_total", "route")
	t.Logf("routes: %v", routes)
	if len(routes) != 5 {
		t.Errorf("route cardinality %d (%v), want 5", len(routes), routes)
	}
	for route, n := range want {
		l := map[string]string{"app": "web", "route": route}
		a, _ := after.sum("supervisor_route_requests_total", l)
		b, _ := before.sum("supervisor_route_requests_total", l)
		t.Logf("route %s: %.0f requests counted, %.0f sent (%.2f%% off)", route, a-b, n, 100*math.Abs(a-b-n)/n)
		if math.Abs(a-b-n) > n/100 {
			t.Errorf("route %s: counted %.0f, hey sent %.0f; want within 1%%", route, a-b, n)
		}
	}
	promtoolClean(t, after)
	checkRouteLatency(t, w.HTTP, addr)
	checkQueue(t, w.HTTP, addr)
	logs, code := w.SupctlRun("logs", "web", "-n", "20")
	if code != 0 || !strings.Contains(logs, `"GET /about HTTP/1.1" 200`) {
		t.Errorf("supctl logs web: exit %d, no Gunicorn access line for /about:\n%s", code, logs)
	}
}

// checkQueue sends requests stamped X-Request-Start (t=seconds, as nginx
// sets it) a second before they leave: each is counted in
// supervisor_route_queue_seconds with a queue time of a second or more.
func checkQueue(t *testing.T, metrics, addr string) {
	t.Helper()
	const n = 50
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stamp := fmt.Sprintf("X-Request-Start: t=%.3f", float64(time.Now().Add(-time.Second).UnixMilli())/1000)
	hey, err := e2e.RunHey(ctx, "-n", fmt.Sprint(n), "-c", "1", "-H", stamp, "http://"+addr+"/about")
	if err != nil || hey.Failed() != 0 {
		t.Fatalf("hey with %q: %v, %d failed", stamp, err, hey.Failed())
	}
	var h histogram
	testenv.Poll(15*time.Second, func() bool {
		sc, err := tryScrape(metrics)
		if err != nil {
			return false
		}
		h, _ = sc.histogram("supervisor_route_queue_seconds", webApp)
		return h.Count >= n
	})
	t.Logf("supervisor_route_queue_seconds{app=web}: %.0f observations, mean %.3fs, for %d stamped requests", h.Count, h.Sum/h.Count, n)
	if h.Count != n || h.Sum/h.Count < 1 {
		t.Errorf("queue histogram: %.0f observations, mean %.3fs; want %d, at least 1s", h.Count, h.Sum/h.Count, n)
	}
}

// runHeys runs one hey per target at once (-c 2 each) and fails the test
// unless each sent n requests without a failure.
func runHeys(t *testing.T, addr string, targets []routeTarget, n int) []e2e.Hey {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	heys := make([]e2e.Hey, len(targets))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, tg := range targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			heys[i], errs[i] = e2e.RunHey(ctx, "-n", fmt.Sprint(n), "-c", "2", "http://"+addr+tg.path)
		}()
	}
	wg.Wait()
	for i, h := range heys {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		t.Logf("hey -n %d -c 2 %s: %d requests, status %v, p50 %s, p99 %s", n, targets[i].path, h.Requests, h.Status, h.P50, h.P99)
		if h.Requests != n || h.Failed() != 0 {
			t.Fatalf("hey %s: %d requests, %d failed; want %d, 0", targets[i].path, h.Requests, h.Failed(), n)
		}
	}
	return heys
}

// checkRouteLatency runs hey alone on /users/:id with 15 ms in the app,
// so that what the worker measures dominates what hey sees, and compares
// the p50 and p99 of the route's histogram over the run with hey's: at
// most one bucket apart.
func checkRouteLatency(t *testing.T, metrics, addr string) {
	t.Helper()
	l := map[string]string{"app": "web", "route": "/users/:id"}
	before, _ := scrapeMetrics(t, metrics).histogram("supervisor_route_request_duration_seconds", l)
	hey := runHeys(t, addr, []routeTarget{{"/users/0b6c3f5e-5a1d-4c61-9f7e-2d3c4b5a6f70?ms=15", "/users/:id"}}, 400)[0]
	var h histogram
	testenv.Poll(15*time.Second, func() bool {
		sc, err := tryScrape(metrics)
		if err != nil {
			return false
		}
		after, _ := sc.histogram("supervisor_route_request_duration_seconds", l)
		h, err = after.minus(before)
		return err == nil && h.Count >= 400
	})
	for _, q := range []struct {
		q   float64
		hey time.Duration
	}{{0.5, hey.P50}, {0.99, hey.P99}} {
		got := h.quantile(q.q)
		bi, hi := h.bucketIndex(got), h.bucketIndex(q.hey.Seconds())
		t.Logf("q%.2f of /users/:id over %.0f requests: histogram %.4fs (le=%g), hey %.4fs (le=%g)", q.q, h.Count, got, h.Bounds[bi], q.hey.Seconds(), h.Bounds[hi])
		if d := bi - hi; d < -1 || d > 1 {
			t.Errorf("q%.2f: histogram %.4fs and hey %.4fs are %d buckets apart; want at most 1", q.q, got, q.hey.Seconds(), d)
		}
	}
}

func atof(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// labelValues returns the distinct values of label in name's series.
func (s scrape) labelValues(name, label string) []string {
	seen := map[string]bool{}
	var out []string
	for _, m := range s.Families[name].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == label && !seen[l.GetValue()] {
				seen[l.GetValue()] = true
				out = append(out, l.GetValue())
			}
		}
	}
	sort.Strings(out)
	return out
}

// promtoolClean runs promtool check metrics on a scrape.
func promtoolClean(t *testing.T, sc scrape) {
	t.Helper()
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(sc.Raw)
	out, err := cmd.CombinedOutput()
	t.Logf("promtool check metrics on %d bytes: exit %v, output %q", len(sc.Raw), err, out)
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestDeployComparison deploys a release whose /report is 200 ms slower
// under a steady load on three routes: the comparison line supctl status
// prints once compare_window has passed shows /report's p99 rising and
// names no other route.
func TestDeployComparison(t *testing.T) {
	deployComparison(t, "swap")
}

// TestDeployComparisonUSR2 is TestDeployComparison with a usr2 deploy:
// the new master inherits the old one's access pipe, and its workers'
// lines count for it by their master's pid.
func TestDeployComparisonUSR2(t *testing.T) {
	if e2e.Runs(1, 0) == 0 {
		t.Skip("E2E_FULL=1 runs it (the swap deploy covers the comparison in the short suite)")
	}
	deployComparison(t, "usr2")
}

// deployComparison deploys release b with strategy under load and
// checks the comparison line.
func deployComparison(t *testing.T, strategy string) {
	w := startRoutes(t, "compare_window = \"3s\"\n[app.web.reload]\nstrategy = \""+strategy+"\"\n")
	addr := w.Addr("web")
	writeRoutesApp(t, filepath.Join(w.Dir, "releases", "b"), 200)
	var loads []*e2e.Loader
	for _, p := range []string{"/", "/items/7", "/report"} {
		loads = append(loads, e2e.StartLoad("tcp", addr, p, 1))
	}
	defer func() {
		for _, l := range loads {
			t.Logf("load: %s", l.Stop())
		}
	}()
	// The old generation's last window must hold requests: wait until
	// /report has been answered for a while.
	testenv.WaitFor(t, 60*time.Second, "old generation's window filled", func() bool {
		sc, err := tryScrape(w.HTTP)
		if err != nil {
			return false
		}
		n, _ := sc.sum("supervisor_route_requests_total", map[string]string{"app": "web", "route": "/report"})
		return n >= 150
	})
	res := w.Ctl("deploy", "web", filepath.Join(w.Dir, "releases", "b"), "--strategy", strategy)
	t.Logf("supctl deploy: exit %d\n%s", res.Code, res.Out)
	if strings.Contains(res.Out, "using swap") {
		t.Fatalf("the %s deploy ran as a swap:\n%s", strategy, res.Out)
	}
	if res.Code != 0 || !regexp.MustCompile(`comparison in [0-3]s: supctl status web`).MatchString(res.Out) {
		t.Fatalf("supctl deploy: exit %d, output lacks the comparison's due line:\n%s", res.Code, res.Out)
	}
	var line string
	testenv.WaitFor(t, 60*time.Second, "comparison line", func() bool {
		line = w.App("web").Comparison
		return strings.Contains(line, "req/s")
	})
	t.Logf("comparison: %s", line)
	st := w.Ctl("status", "web")
	if !strings.Contains(st.Out, line) {
		t.Errorf("supctl status web does not print the comparison:\n%s", st.Out)
	}
	moved := line[strings.Index(line, ";"):]
	m := regexp.MustCompile(`/report ([0-9.]+)ms -> ([0-9.]+)ms`).FindStringSubmatch(moved)
	if m == nil {
		t.Fatalf("comparison %q: /report's p99 not among the moved routes", line)
	}
	if old, cur := atof(t, m[1]), atof(t, m[2]); cur < old+150 {
		t.Errorf("comparison %q: /report's p99 went from %vms to %vms; want it up by about 200ms", line, old, cur)
	}
	for _, r := range []string{"/items/:id", " / "} {
		if strings.Contains(moved+" ", r) {
			t.Errorf("comparison %q names the unchanged route %q", line, r)
		}
	}
}

// TestTopRoutes: `supctl top --routes web`, piped, while hey drives a slow
// and a fast route of the real app, lists /report first among the slowest
// routes with a p99 of at least its sleep, and prints no escape sequence.
func TestTopRoutes(t *testing.T) {
	w := startRoutes(t, "")
	addr := w.Addr("web")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	done := make(chan error, 2)
	for _, path := range []string{"/report?ms=30", "/about"} {
		go func() {
			_, err := e2e.RunHey(ctx, "-z", "4s", "-c", "2", "http://"+addr+path)
			done <- err
		}()
	}
	var out string
	testenv.WaitFor(t, 30*time.Second, "/report listed first with its p99", func() bool {
		var code int
		out, code = w.SupctlRun("top", "--routes", "web", "--interval", "1s")
		if code != 0 {
			t.Fatalf("supctl top --routes web: exit %d\n%s", code, out)
		}
		return slowestFirst(out, "/report", 30*time.Millisecond)
	})
	top, code := w.SupctlRun("top", "--interval", "500ms")
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("piped output has escape sequences: %q", out)
	}
	t.Logf("supctl top --routes web:\n%s", out)
	if apdex := column(top, "web", "APDEX"); code != 0 || !strings.HasPrefix(apdex, "0.") && apdex != "1.00" {
		t.Errorf("supctl top: exit %d, web's APDEX %q, want a score\n%s", code, apdex, top)
	}
	t.Logf("supctl top:\n%s", top)
}

// column returns the field of out's table under header in the row of
// name ("" when either is missing).
func column(out, name, header string) string {
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		h := strings.Fields(l)
		at := slices.Index(h, header)
		if at < 0 {
			continue
		}
		for _, r := range lines[i+1:] {
			if f := strings.Fields(r); len(f) == len(h) && f[0] == name {
				return f[at]
			}
		}
	}
	return ""
}

// slowestFirst reports whether the first route row of top --routes' output
// is route with a p99 (its last column ending in a unit) of at least min.
func slowestFirst(out, route string, min time.Duration) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) < 2 || !strings.HasPrefix(f[0], "/") {
			continue
		}
		if f[0] != route {
			return false
		}
		for _, v := range f[1:] {
			if d, err := time.ParseDuration(v); err == nil {
				return d >= min
			}
		}
		return false
	}
	return false
}
