package metrics

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// canaryRoutes is how many routes the canary test app serves.
const canaryRoutes = 10

// canaryApp is a Flask app of routes /r0 to /r9 answering "VERSION rN";
// route /rBAD answers 500 (BAD = -1: none), route /rLOGGED logs a
// traceback to stderr and answers 200 (LOGGED = -1: none).
const canaryApp = `import logging

from flask import Flask

VERSION = %q
BAD = %d
LOGGED = %d

app = Flask(__name__)


def make(i):
    def view():
        if i == BAD:
            return "%%s r%%d fails\n" %% (VERSION, i), 500
        if i == LOGGED:
            try:
                raise LookupError("release %%s lost route %%d" %% (VERSION, i))
            except LookupError:
                logging.exception("handled")
        return "%%s r%%d\n" %% (VERSION, i)
    view.__name__ = "r%%d" %% i
    return view


@app.route("/")
def index():
    return VERSION + "\n"


for _i in range(10):
    app.add_url_rule("/r%%d" %% _i, view_func=make(_i))
`

// writeCanaryApp writes canaryApp (version, failing and logging routes)
// into dir.
func writeCanaryApp(t *testing.T, dir, version string, bad, logged int) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(fmt.Sprintf(canaryApp, version, bad, logged)), 0o644); err != nil {
		t.Fatal(err)
	}
}

// startCanary starts a supervisor whose app web (with the app table's
// extra keys) serves canaryApp release a from the link DIR/current, and
// writes release b with route bad failing and route logged logging.
func startCanary(t *testing.T, bad, logged int, extra string) *web {
	t.Helper()
	app := e2e.App{Workers: 2, Directory: "@DIR@/current", Extra: extra}
	cfg := e2e.Config{HTTP: "127.0.0.1:0", ShutdownTimeout: "30s", Apps: []e2e.App{app}}.String()
	s := e2e.Start(t, e2e.Options{Config: cfg, Setup: func(dir string) {
		writeCanaryApp(t, filepath.Join(dir, "releases", "a"), "a", -1, -1)
		writeCanaryApp(t, filepath.Join(dir, "releases", "b"), "b", bad, logged)
		if err := os.Symlink(filepath.Join(dir, "releases", "a"), filepath.Join(dir, "current")); err != nil {
			t.Fatal(err)
		}
	}})
	w := &web{Supervisor: s}
	s.WaitState("web", control.StateRunning, 90*time.Second)
	w.HTTP = metricsAddr(t, s)
	return w
}

// heyAll runs one hey per route for d, each a new connection per request
// (so that the split's per-connection hash spreads them), and sums them.
func heyAll(t *testing.T, addr string, d time.Duration) (done func() (requests, failed int)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d+60*time.Second)
	var wg sync.WaitGroup
	heys := make([]e2e.Hey, canaryRoutes)
	errs := make([]error, canaryRoutes)
	for i := range canaryRoutes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			heys[i], errs[i] = e2e.RunHey(ctx, "-disable-keepalive", "-c", "1", "-z", d.String(), fmt.Sprintf("http://%s/r%d", addr, i))
		}()
	}
	return func() (int, int) {
		wg.Wait()
		cancel()
		n, failed := 0, 0
		for i, h := range heys {
			if errs[i] != nil {
				t.Fatalf("route r%d: %v", i, errs[i])
			}
			n += h.Requests
			failed += h.Failed()
		}
		return n, failed
	}
}

// decisionRE finds the step line a canary ended on: share, time, verdict.
var decisionRE = regexp.MustCompile(`canary ([0-9]+)% after ([0-9.]+m?s): (pass|worse)`)

// TestCanaryRollsBackBadRelease deploys, as a canary at 10 %, a release
// whose /r7 answers 500 (1 route in 10) under hey on all ten routes: the
// supervisor rolls it back on its own, release a serves on, and fewer
// clients fail than a blind canary would have failed over its window.
func TestCanaryRollsBackBadRelease(t *testing.T) {
	window := time.Duration(e2e.Runs(30, 6)) * time.Second
	w := startCanary(t, 7, -1, "")
	addr := w.Addr("web")
	load := heyAll(t, addr, window+4*time.Second)
	waitRequests(t, w, 200)
	res := w.Ctl("deploy", "web", filepath.Join(w.Dir, "releases", "b"), "--canary", "10%", "--for", window.String())
	t.Logf("supctl deploy: exit %d in %s\n%s", res.Code, res.Took, res.Out)
	n, failed := load()
	m := decisionRE.FindStringSubmatch(res.Out)
	if res.Code == 0 || m == nil || m[3] != "worse" || !strings.Contains(res.Out, "rolling back") {
		t.Fatalf("the canary of a failing release was not rolled back on its judgement (exit %d):\n%s", res.Code, res.Out)
	}
	took, err := time.ParseDuration(m[2])
	if err != nil {
		t.Fatal(err)
	}
	rate := float64(n) / (window + 4*time.Second).Seconds()
	blind := 0.10 * 0.10 * rate * window.Seconds()
	t.Logf("FIGURES canary rollback: %d requests (%.0f/s), %d failed; a blind 10%% canary over %s would fail about %.0f; decision after %s",
		n, rate, failed, window, blind, took)
	if took >= window {
		t.Errorf("decision after %s: the step's end, not the live judgement", took)
	}
	if _, body, err := get(addr, "/"); err != nil || body != "a\n" {
		t.Errorf("GET / after the rollback: %q (%v), want release a", body, err)
	}
	if st := w.Ctl("status", "web"); !strings.Contains(st.Out, "last canary") || !strings.Contains(st.Out, "worse") {
		t.Errorf("supctl status keeps no canary judgement:\n%s", st.Out)
	}
}

// TestCanaryPromotesGoodRelease deploys a good release as a canary of
// 10 % then 50 %, then the full switch, under hey: no client fails and
// release b serves at the end.
func TestCanaryPromotesGoodRelease(t *testing.T) {
	step := time.Duration(e2e.Runs(20, 3)) * time.Second
	w := startCanary(t, -1, -1, "")
	addr := w.Addr("web")
	load := heyAll(t, addr, 2*step+8*time.Second)
	waitRequests(t, w, 200)
	dep := w.CtlAsync("deploy", "web", filepath.Join(w.Dir, "releases", "b"), "--canary", "10%,50%", "--for", step.String())
	dep.WaitOutput(t, 60*time.Second, "gets 10% of new connections")
	var line string
	testenv.WaitFor(t, 30*time.Second, "status of the canary", func() bool {
		line = w.App("web").Comparison
		return strings.Contains(line, "canary: generation 2 gets 10% of new connections") && strings.Contains(line, "requests ")
	})
	t.Logf("status during the canary: %s", line)
	res := dep.Wait(t, 2*step+60*time.Second)
	t.Logf("supctl deploy: exit %d in %s\n%s", res.Code, res.Took, res.Out)
	n, failed := load()
	steps := decisionRE.FindAllStringSubmatch(res.Out, -1)
	if res.Code != 0 || len(steps) != 2 || steps[0][1] != "10" || steps[1][1] != "50" {
		t.Fatalf("the canary did not pass 10%% and 50%% (exit %d):\n%s", res.Code, res.Out)
	}
	t.Logf("FIGURES canary promote: %d requests, %d failed", n, failed)
	if failed != 0 {
		t.Errorf("%d of %d requests failed through the canary's promotion", failed, n)
	}
	if _, body, err := get(addr, "/"); err != nil || body != "b\n" {
		t.Errorf("GET / after the promotion: %q (%v), want release b", body, err)
	}
}

// TestCanaryRefused asks for a canary where none can run: an app on a
// Unix socket (rename steering) and a usr2 reload; nothing starts.
func TestCanaryRefused(t *testing.T) {
	app := e2e.App{Workers: 1, Listen: []string{"unix://@DIR@/web.sock"}}
	cfg := e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{app}}.String()
	s := e2e.Start(t, e2e.Options{Config: cfg, Setup: func(dir string) {
		writeCanaryApp(t, filepath.Join(dir, "app"), "a", -1, -1)
	}})
	s.WaitState("web", control.StateRunning, 90*time.Second)
	gen := s.App("web").Generation
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"reload", "web", "--canary", "10%"}, "rename steering cannot split by weight"},
		{[]string{"reload", "web", "--canary", "10%", "--strategy", "usr2"}, "strategy usr2 cannot run a canary"},
		{[]string{"reload", "web", "--canary", "150%"}, "below 100%"},
	} {
		res := s.Ctl(tc.args...)
		if res.Code == 0 || !strings.Contains(res.Out, tc.want) {
			t.Errorf("supctl %s: exit %d, want a refusal saying %q:\n%s", strings.Join(tc.args, " "), res.Code, tc.want, res.Out)
		}
	}
	if g := s.App("web").Generation; g != gen {
		t.Errorf("generation %d after the refusals, want %d (nothing started)", g, gen)
	}
}

// waitRequests waits until app web's route metrics counted n requests.
func waitRequests(t *testing.T, w *web, n float64) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, "requests counted", func() bool {
		sc, err := tryScrape(w.HTTP)
		if err != nil {
			return false
		}
		got, _ := sc.sum("supervisor_route_requests_total", map[string]string{"app": "web"})
		return got >= n
	})
}

// TestCanaryStoppedMidway stops the app while its canary (from the
// configuration: a plain deploy runs it) runs a long step: the deploy ends
// at once, rolled back, and the stop completes with both generations gone.
func TestCanaryStoppedMidway(t *testing.T) {
	w := startCanary(t, -1, -1, "[app.web.reload]\ncanary = \"10%\"\ncanary_for = \"1h\"\n")
	dep := w.CtlAsync("deploy", "web", filepath.Join(w.Dir, "releases", "b"))
	dep.WaitOutput(t, 60*time.Second, "gets 10% of new connections")
	stop := w.Ctl("stop", "web")
	res := dep.Wait(t, 30*time.Second)
	t.Logf("supctl stop: exit %d in %s\n%s\nsupctl deploy: exit %d in %s\n%s", stop.Code, stop.Took, stop.Out, res.Code, res.Took, res.Out)
	if stop.Code != 0 || res.Code == 0 || !strings.Contains(res.Out, "rolling back") {
		t.Fatalf("stop during a canary: stop exit %d, deploy exit %d", stop.Code, res.Code)
	}
	if a := w.WaitState("web", control.StateStopped, 30*time.Second); a.MasterPID != 0 {
		t.Errorf("web stopped with master %d", a.MasterPID)
	}
}

// TestCanaryNewExceptionGroup deploys, as a canary, a release that
// answers every request but logs a traceback of a new exception on one
// route: the error inbox's group of the canary's generation rolls it back.
func TestCanaryNewExceptionGroup(t *testing.T) {
	if e2e.Runs(1, 0) == 0 {
		t.Skip("E2E_FULL=1 runs it (the unit tests cover the rule in the short suite)")
	}
	w := startCanary(t, -1, 3, "")
	addr := w.Addr("web")
	load := heyAll(t, addr, 15*time.Second)
	waitRequests(t, w, 200)
	res := w.Ctl("deploy", "web", filepath.Join(w.Dir, "releases", "b"), "--canary", "10%", "--for", "10s")
	t.Logf("supctl deploy: exit %d in %s\n%s", res.Code, res.Took, res.Out)
	n, failed := load()
	t.Logf("FIGURES canary new exception: %d requests, %d failed", n, failed)
	if res.Code == 0 || !strings.Contains(res.Out, "new exception LookupError") {
		t.Fatalf("a canary with a new exception group was not rolled back on it (exit %d)", res.Code)
	}
	if failed != 0 {
		t.Errorf("%d requests failed; the release answers every one", failed)
	}
}
