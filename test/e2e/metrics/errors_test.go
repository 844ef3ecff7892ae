package metrics

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// errorsApp is a Flask app with one route raising two exceptions (by the
// parity of its argument) and one raising inside library frames (flask.json,
// then the standard library's json). Flask logs each traceback on stderr
// (app.logger, through Gunicorn's wsgi.errors) and answers 500.
const errorsApp = `import time

from flask import Flask, json

app = Flask(__name__)


@app.route("/")
def index():
    return "ok\n"


def parse(value):
    return int(value)


@app.route("/orders/<int:n>")
def orders(n):
    if n % 2 == 0:
        return str(parse("x"))
    return {}["missing"]


@app.route("/decode")
def decode():
    return json.loads("{not json")


@app.route("/sleep")
def sleep():
    time.sleep(60)
    return "late\n"
`

// TestErrorInbox drives a known number of failing requests with hey and
// checks that the app's error inbox holds exactly three groups with those
// counts (ValueError and KeyError from one route, JSONDecodeError raised in
// library frames, grouped by the app's frame that called them), that
// supctl errors prints them, and that supervisor_app_exceptions_total
// counts them by type; then that a worker killed by SIGKILL and one past
// Gunicorn's timeout are counted, and promtool finds nothing to say about
// the scrape.
func TestErrorInbox(t *testing.T) {
	w := startWeb(t, webOpts{Source: errorsApp, Keys: "\nargs = [\"--timeout\", \"4\"]\n"})
	addr := w.Addr("web")
	want := map[string]uint64{"ValueError": 40, "KeyError": 30, "json.decoder.JSONDecodeError": 20}
	paths := map[string]string{"ValueError": "/orders/2", "KeyError": "/orders/3", "json.decoder.JSONDecodeError": "/decode"}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	total := uint64(0)
	for exc, n := range want {
		url := fmt.Sprintf("http://%s%s", addr, paths[exc])
		hey, err := e2e.RunHey(ctx, "-n", fmt.Sprint(n), "-c", "2", url)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("hey -n %d -c 2 %s: status %v, errors %v", n, url, hey.Status, hey.Errors)
		if hey.Status[500] != int(n) {
			t.Fatalf("%s: %d answers 500, want %d", url, hey.Status[500], n)
		}
		total += n
	}
	var inbox control.AppErrors
	testenv.WaitForState(t, 60*time.Second, fmt.Sprintf("%d exceptions in the inbox", total), func() (bool, string) {
		resp, err := w.Client().Errors(ctx, []string{"web"})
		if err != nil || len(resp.Apps) != 1 {
			return false, fmt.Sprint(err)
		}
		inbox = resp.Apps[0]
		n := uint64(0)
		for _, g := range inbox.Groups {
			n += g.Count
		}
		return n >= total, fmt.Sprintf("%d exceptions in %d groups", n, len(inbox.Groups))
	})
	checkGroups(t, inbox, want)

	res := w.Ctl("errors", "web")
	t.Logf("supctl errors web (exit %d):\n%s", res.Code, res.Out)
	for exc, n := range want {
		if line := fmt.Sprintf("%d x %s", n, exc); res.Code != 0 || !strings.Contains(res.Out, line) {
			t.Errorf("supctl errors web lacks %q", line)
		}
	}
	sc := scrapeMetrics(t, w.HTTP)
	for exc, n := range want {
		got, _ := sc.sum("supervisor_app_exceptions_total", map[string]string{"app": "web", "exception": exc})
		if got != float64(n) {
			t.Errorf("supervisor_app_exceptions_total{exception=%q} = %v, want %d", exc, got, n)
		}
	}
	checkWorkerEvents(t, w)
	raw := scrapeMetrics(t, w.HTTP).Raw
	cmd := exec.Command("promtool", "check", "metrics")
	cmd.Stdin = strings.NewReader(raw)
	if out, err := cmd.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("promtool check metrics on the scrape with exception and worker series: %v\n%s", err, out)
	}
}

// checkWorkerEvents kills a worker with SIGKILL, then sends a request that
// outlasts Gunicorn's timeout (4 s): the master's lines about them count
// in supervisor_worker_killed_total{signal="SIGKILL"} and
// supervisor_worker_timeouts_total.
func checkWorkerEvents(t *testing.T, w *web) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := w.Client().Status(ctx, "web")
	if err != nil || len(st.Apps) != 1 || len(st.Apps[0].WorkerPIDs) == 0 {
		t.Fatalf("status web: %+v %v", st, err)
	}
	if err := syscall.Kill(st.Apps[0].WorkerPIDs[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitCounter(t, w, "supervisor_worker_killed_total", map[string]string{"app": "web", "signal": "SIGKILL"}, 1)
	done := make(chan error, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+w.Addr("web")+"/sleep", nil)
		if err == nil {
			var resp *http.Response
			if resp, err = http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		done <- err
	}()
	waitCounter(t, w, "supervisor_worker_timeouts_total", webApp, 1)
	t.Logf("GET /sleep past the timeout: %v", <-done)
}

// waitCounter waits until the series of name matching labels sum to want.
func waitCounter(t *testing.T, w *web, name string, labels map[string]string, want float64) {
	t.Helper()
	testenv.WaitForState(t, 60*time.Second, fmt.Sprintf("%s%v = %v", name, labels, want), func() (bool, string) {
		sc, err := tryScrape(w.HTTP)
		if err != nil {
			return false, err.Error()
		}
		got, _ := sc.sum(name, labels)
		return got == want, fmt.Sprint(got)
	})
}

// checkGroups asserts inbox has exactly one group per exception type of
// want, with want's count, first seen in generation 1, each attributed to
// the app's own frame.
func checkGroups(t *testing.T, inbox control.AppErrors, want map[string]uint64) {
	t.Helper()
	if len(inbox.Groups) != len(want) || inbox.DroppedLines != 0 {
		t.Errorf("%d groups (%d lines dropped), want %d: %+v", len(inbox.Groups), inbox.DroppedLines, len(want), inbox.Groups)
	}
	where := map[string]string{"ValueError": "in parse", "KeyError": "in orders", "json.decoder.JSONDecodeError": "in decode"}
	for _, g := range inbox.Groups {
		t.Logf("group %s %s: %d, generation %d, at %s, %d traceback lines", g.Fingerprint, g.Exception, g.Count, g.Generation, g.Where, len(g.Traceback))
		if g.Count != want[g.Exception] || g.Generation != 1 {
			t.Errorf("group %s: count %d generation %d, want %d generation 1", g.Exception, g.Count, g.Generation, want[g.Exception])
		}
		if !strings.HasSuffix(g.Where, where[g.Exception]) || !strings.Contains(g.Where, "app.py") {
			t.Errorf("group %s at %q, want app.py ... %s", g.Exception, g.Where, where[g.Exception])
		}
	}
}
