package workers

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/procfs"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// appSource is the Flask app of these tests: GET /sleep?ms=N sleeps N ms
// (a worker-bound route: two workers saturate under enough clients), GET
// /leak keeps 5 MiB more per request for the worker's life (the pages are
// written, so they count in its RSS), GET /healthz answers ok.
const appSource = `import time

from flask import Flask, request

app = Flask(__name__)
LEAK = []


@app.route("/sleep")
def sleep():
    time.sleep(int(request.args.get("ms", "10")) / 1000.0)
    return "slept\n"


@app.route("/leak")
def leak():
    LEAK.append(b"x" * (5 << 20))
    return "leaked %d MiB\n" % (5 * len(LEAK))


@app.route("/healthz")
def healthz():
    return "ok\n"
`

// running is a supervisor with the app "web" running.
type running struct {
	*e2e.Supervisor
	// HTTP is the metrics endpoint's host:port; URL the app's base URL.
	HTTP, URL string
}

// startApp starts a supervisor running appSource as "web" with the
// workers value and extra keys given.
func startApp(t *testing.T, workers string, extra string) *running {
	t.Helper()
	app := e2e.App{Extra: extra}
	if strings.Contains(workers, "..") {
		app.WorkersRange = workers
	} else {
		n, err := strconv.Atoi(workers)
		if err != nil {
			t.Fatalf("workers %q: %v", workers, err)
		}
		app.Workers = n
	}
	cfg := e2e.Config{HTTP: "127.0.0.1:0", ShutdownTimeout: "30s", Apps: []e2e.App{app}}.String()
	s := e2e.Start(t, e2e.Options{Config: cfg, Setup: func(dir string) {
		if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "app", "app.py"), []byte(appSource), 0o644); err != nil {
			t.Fatal(err)
		}
	}})
	st := s.WaitRunning(60*time.Second, "web")
	r := &running{Supervisor: s, HTTP: st.Supervisor.HTTP, URL: "http://" + s.Addr("web")}
	testenv.WaitFor(t, 30*time.Second, "web answering", func() bool {
		resp, err := http.Get(r.URL + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return r
}

// scrape returns the samples of /metrics whose series (name and labels
// as written) start with one of prefixes.
func scrape(addr string, prefixes ...string) (map[string]float64, error) {
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", addr, err)
	}
	defer resp.Body.Close()
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		for _, p := range prefixes {
			if !strings.HasPrefix(line, p) {
				continue
			}
			i := strings.LastIndexByte(line, ' ')
			if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out, sc.Err()
}

// sumPrefix adds the samples whose series start with prefix.
func sumPrefix(m map[string]float64, prefix string) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

// row is one sample of the curve.
type row struct {
	at                     time.Duration
	queue, target, workers int
	maxRSS                 int // MiB, largest worker
	master                 int
}

// sampler records a row every interval until stop.
type sampler struct {
	mu   sync.Mutex
	rows []row
	stop chan struct{}
	done chan struct{}
}

// sample starts a sampler of r's metrics and of its workers' RSS.
func sample(r *running, every time.Duration) *sampler {
	s := &sampler{stop: make(chan struct{}), done: make(chan struct{})}
	start := time.Now()
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-t.C:
			}
			m, err := scrape(r.HTTP, "supervisor_listener_queue_length", "supervisor_app_workers")
			if err != nil {
				continue
			}
			rw := row{at: time.Since(start), queue: int(sumPrefix(m, "supervisor_listener_queue_length{")),
				target: int(sumPrefix(m, "supervisor_app_workers_target{")), workers: int(sumPrefix(m, "supervisor_app_workers{"))}
			rw.master, rw.maxRSS = workerRSS(r)
			s.mu.Lock()
			s.rows = append(s.rows, rw)
			s.mu.Unlock()
		}
	}()
	return s
}

// seen returns the rows recorded so far.
func (s *sampler) seen() []row {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]row(nil), s.rows...)
}

// finish stops the sampler and returns its rows.
func (s *sampler) finish() []row {
	close(s.stop)
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]row(nil), s.rows...)
}

// workerRSS returns web's master and the largest RSS of its workers, MiB.
func workerRSS(r *running) (master, mib int) {
	st := r.App("web")
	for _, pid := range e2e.Descendants(e2e.ProcTable(), st.MasterPID) {
		p, err := procfs.NewProc(pid)
		if err != nil {
			continue
		}
		if s, err := p.Stat(); err == nil {
			mib = max(mib, s.ResidentMemory()>>20)
		}
	}
	return st.MasterPID, mib
}

// table formats rows for the test log.
func table(rows []row) string {
	var b strings.Builder
	b.WriteString("    t(s)  queue  target  workers  max_rss_MiB\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "  %6.2f  %5d  %6d  %7d  %11d\n", r.at.Seconds(), r.queue, r.target, r.workers, r.maxRSS)
	}
	return b.String()
}
