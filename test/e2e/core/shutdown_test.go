package core

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

var shutdownConfig = e2e.Config{ShutdownTimeout: "30s"}.String() + `
[app.sleeper]
allow_root = true
kind = "process"
command = ["/bin/sleep", "3600"]
stop_timeout = "10s"

[app.web]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "trace:app"
workers = 2
listen = ["tcp://127.0.0.1:0"]
stop_timeout = "10s"
env = { TRACE_FILE = "@DIR@/trace.log" }
`

// traceModule wraps the Slow release's app: it appends "start ID" to
// $TRACE_FILE when a worker begins a request ?id=ID, so the test knows which
// requests a worker had accepted (O_APPEND writes of one short line are atomic).
const traceModule = `import os
from app import app as _inner

_fd = os.open(os.environ["TRACE_FILE"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def app(environ, start_response):
    for part in environ.get("QUERY_STRING", "").split("&"):
        if part.startswith("id="):
            os.write(_fd, ("start %s\n" % part[3:]).encode())
    return _inner(environ, start_response)
`

// tracedRequest is one request of the shutdown load.
type tracedRequest struct {
	id         int
	start, end time.Time
	status     int
	body       string
	errKind    string // "" for an answer
	err        error
}

func classifyErr(err error) string {
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "reset"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return "other"
}

// TestSigtermUnderLoad: SIGTERM to the supervisor while 500 ms requests are
// in flight: every request a worker had begun completes with 200, every
// child is gone, the supervisor exits 0 and leaves no process (the harness
// checks). Requests still queued in the held socket's backlog when the
// supervisor closes it at exit fail; they are counted apart.
func TestSigtermUnderLoad(t *testing.T) {
	s := e2e.Start(t, e2e.Options{Config: shutdownConfig, Setup: func(dir string) {
		app := filepath.Join(dir, "app")
		if err := os.MkdirAll(app, 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.WriteRelease(t, app, testenv.Release{Version: "1", Variant: testenv.Slow})
		if err := os.WriteFile(filepath.Join(app, "trace.py"), []byte(traceModule), 0o644); err != nil {
			t.Fatal(err)
		}
	}})
	web := s.WaitState("web", control.StateRunning, 60*time.Second)
	sleeper := s.WaitState("sleeper", control.StateRunning, 60*time.Second)
	addr := s.Addr("web")
	children := append([]int{web.MasterPID, sleeper.MasterPID}, web.WorkerPIDs...)
	if len(web.WorkerPIDs) != 2 {
		t.Fatalf("web workers %v, want 2", web.WorkerPIDs)
	}

	var (
		mu       sync.Mutex
		reqs     []tracedRequest
		nextID   atomic.Int64
		termSent atomic.Bool
		stop     = make(chan struct{})
		wg       sync.WaitGroup
		clients  = 8
	)
	for i := 0; i < clients; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
			for {
				select {
				case <-stop:
					return
				default:
				}
				id := int(nextID.Add(1))
				r := tracedRequest{id: id, start: time.Now()}
				resp, err := c.Get(fmt.Sprintf("http://%s/?ms=500&id=%d", addr, id))
				if err == nil {
					var b []byte
					b, err = io.ReadAll(resp.Body)
					_ = resp.Body.Close() // fully read
					r.status, r.body = resp.StatusCode, string(b)
				}
				r.end = time.Now()
				if err != nil {
					r.errKind, r.err = classifyErr(err), err
				}
				mu.Lock()
				reqs = append(reqs, r)
				mu.Unlock()
				if err != nil && termSent.Load() {
					return // shutting down: one failure per client is enough to count
				}
			}
		}()
	}
	traceFile := filepath.Join(s.Dir, "trace.log")
	// Wait until workers have begun some requests and some have completed.
	testenv.WaitFor(t, 60*time.Second, "slow requests flowing", func() bool {
		mu.Lock()
		n := len(reqs)
		mu.Unlock()
		b, _ := os.ReadFile(traceFile) // absent until the first request
		return n >= 6 && strings.Count(string(b), "\n") >= 8
	})
	termAt := time.Now()
	termSent.Store(true)
	code := s.Stop(syscall.SIGTERM, 60*time.Second)
	took := time.Since(termAt)
	close(stop)
	wg.Wait()

	// Which requests had a worker begun?
	b, err := os.ReadFile(traceFile)
	if err != nil {
		t.Fatal(err)
	}
	started := map[int]bool{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if n, err := strconv.Atoi(strings.TrimPrefix(line, "start ")); err == nil {
			started[n] = true
		}
	}
	var okBefore, inFlight, inFlightFailed, notStartedFailed, notStartedOK int
	failKinds := map[string]int{}
	for _, r := range reqs {
		ok := r.err == nil && r.status == 200 && r.body == "version=1\n"
		switch {
		case started[r.id] && !ok:
			inFlightFailed++
			t.Errorf("request %d begun by a worker failed: status %d body %q err %v (sent %s before TERM, ended %s after)",
				r.id, r.status, r.body, r.err, termAt.Sub(r.start).Round(time.Millisecond), r.end.Sub(termAt).Round(time.Millisecond))
		case started[r.id] && r.end.After(termAt):
			inFlight++
		case started[r.id]:
			okBefore++
		case ok:
			notStartedOK++
		default:
			notStartedFailed++
			kind := r.errKind
			if kind == "" {
				kind = "status " + strconv.Itoa(r.status)
			}
			failKinds[kind]++
		}
	}
	t.Logf("SIGTERM under load: supervisor exit %d, %s after TERM; requests=%d completed before TERM=%d in flight at TERM and completed=%d in-flight failed=%d; never begun by a worker (queued in the backlog or sent after the listeners closed): failed=%d %v",
		code, took.Round(time.Millisecond), len(reqs), okBefore, inFlight, inFlightFailed, notStartedFailed, failKinds)
	if code != 0 {
		t.Errorf("supervisor exit %d, want 0", code)
	}
	if inFlight == 0 {
		t.Errorf("no request was in flight at TERM: the test proved nothing")
	}
	if notStartedOK != 0 {
		t.Errorf("%d requests answered 200 without a trace line: the trace is broken", notStartedOK)
	}
	for _, pid := range children {
		if p, err := testenv.ReadStat(pid); err == nil && p.State != 'Z' {
			t.Errorf("child %d (%s) still running after the supervisor exited", pid, p.Comm)
		}
	}
	// The master stopped by itself within stop_timeout (no SIGKILL needed):
	// its exit is "exit 0", the sleeper's is its TERM.
	out := s.Output()
	for app, want := range map[string]string{"web": `status="exit 0"`, "sleeper": `status="signal 15 (SIGTERM)"`} {
		re := regexp.MustCompile(`msg=exited app=` + app + ` .*`)
		lines := re.FindAllString(out, -1)
		if len(lines) == 0 || !strings.Contains(lines[len(lines)-1], want) {
			t.Errorf("%s exit log %q, want %s", app, lines, want)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "msg=stopping") || strings.Contains(line, "msg=exited") || strings.Contains(line, "supervisor stopped") || strings.Contains(line, "Shutting down") || strings.Contains(line, "Worker exiting") {
			t.Logf("  %s", line)
		}
	}
	if !strings.Contains(out, "supervisor stopped") {
		t.Errorf("no \"supervisor stopped\" line in the output")
	}
}
