package pid1

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// slowWebConfig: one Gunicorn app (testApp: GET /?ms=N answers after N
// ms) with four workers, so that load on three connections and one long
// request are all served at once.
var slowWebConfig = e2e.Config{ShutdownTimeout: "60s"}.String() + `
[app.web]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 4
listen = ["tcp://127.0.0.1:0"]
stop_timeout = "30s"
`

// longRequest is how long the request in flight at TERM takes.
const longRequest = 5 * time.Second

// TestPID1TermUnderLoadDrains: TERM to the supervisor as PID 1 while it
// serves load drains Gunicorn gracefully: a request in a worker's hands when
// the signal arrives is answered, and the supervisor exits 0.
func TestPID1TermUnderLoadDrains(t *testing.T) {
	s := startPID1(t, e2e.Options{Config: slowWebConfig, Setup: func(dir string) {
		writeTestApp(t, filepath.Join(dir, "app"))
	}})
	s.WaitState("web", control.StateRunning, 60*time.Second)
	addr := s.Addr("web")

	load := e2e.StartLoad("tcp", addr, "/?ms=50", 3)
	defer load.Stop()
	testenv.WaitFor(t, 30*time.Second, "load served", func() bool { return load.Snapshot().OK >= 30 })

	// One long request, in a worker's hands (it has created the mark file)
	// when TERM arrives.
	type answer struct {
		status int
		body   string
		err    error
		start  time.Time
		at     time.Time
	}
	answered := make(chan answer, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 60 * time.Second}
		start := time.Now()
		resp, err := c.Get("http://" + addr + "/?mark=inflight&ms=" + strconv.Itoa(int(longRequest/time.Millisecond)))
		if err != nil {
			answered <- answer{err: err, start: start, at: time.Now()}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{status: resp.StatusCode, body: string(b), err: err, start: start, at: time.Now()}
	}()
	testenv.WaitFor(t, 30*time.Second, "the long request in a worker's hands", func() bool {
		_, err := os.Stat(filepath.Join(s.Dir, "app", "inflight"))
		return err == nil
	})
	before := load.Snapshot()
	termAt := time.Now()
	s.signal(syscall.SIGTERM)

	code := s.Wait(90 * time.Second)
	exitedAfter := time.Since(termAt)
	atExit := load.Snapshot()
	res := load.Stop()
	a := <-answered
	t.Logf("TERM under load: supervisor exit %d, %s after TERM; long request (%s) sent %s before TERM, answered %s after TERM: status %d, err %v",
		code, exitedAfter.Round(time.Millisecond), longRequest, termAt.Sub(a.start).Round(time.Millisecond), a.at.Sub(termAt).Round(time.Millisecond), a.status, a.err)
	t.Logf("load: before TERM ok=%d; until the supervisor exited: %s; after: refused +%d", before.OK, atExit, res.Refused-atExit.Refused)
	if !a.at.After(termAt) {
		t.Errorf("the long request was answered before TERM: the test did not test a drain")
	}
	// At shutdown the supervisor closes its copy of the socket first, so once
	// the last worker has finished its request (the long one) and closed
	// its copy, new clients are refused and queued ones reset: nobody is left
	// to accept them. Before that, while workers drain, nothing may fail.
	// The boundary is the worker's own clock as it finished the long
	// request: the client's record of the answer may be scheduled after the
	// load's first reset.
	done, derr := inflightDone(filepath.Join(s.Dir, "app", "inflight.done"))
	appExit, ok := logTime(s.Output(), "msg=exited app=web")
	switch {
	case derr != nil:
		t.Errorf("when the long request finished: %v", derr)
	case !ok:
		t.Errorf("no 'exited app=web' line in the output")
	default:
		stamp := done.Format("15:04:05.000")
		t.Logf("TERM at %s, long request finished in its worker at %s, answer read at %s, app exited at %s; first load errors: %q",
			termAt.Format("15:04:05.000"), stamp, a.at.Format("15:04:05.000"), appExit.Local().Format("15:04:05.000"), atExit.Errors[:min(3, len(atExit.Errors))])
		for _, e := range atExit.Errors {
			if e[:len(stamp)] < stamp {
				t.Errorf("load error while workers were draining: %s", e)
			}
		}
	}
	if code != 0 {
		t.Errorf("supervisor exit status %d after TERM, want 0", code)
	}
	if a.err != nil || a.status != http.StatusOK || !strings.HasPrefix(a.body, "version=1") {
		t.Errorf("request in flight at TERM: status %d body %q err %v; want 200 version=1 (graceful drain)", a.status, a.body, a.err)
	}
	if res.Non2xx != 0 {
		t.Errorf("%d non-2xx answers under load: %v", res.Non2xx, res.Errors)
	}
	if !strings.Contains(s.Output(), `msg=stopping signal=terminated`) {
		t.Errorf("no 'stopping signal=terminated' in the output")
	}
}

// TestPID1ExitWith: with exit_with = "main", the supervisor as PID 1 exits
// with main's status the way a shell reports it: 128+9 when main is killed
// by SIGKILL, 3 when it exits 3. Its other app is stopped first.
func TestPID1ExitWith(t *testing.T) {
	cfg := e2e.Config{ShutdownTimeout: "30s", Extra: "exit_with = \"main\"\n"}.String() + `

[app.main]
allow_root = true
kind = "process"
directory = "@DIR@"
command = ["/bin/sh", "-c", "while [ ! -e @DIR@/exit-now ]; do sleep 0.02; done; exit 3"]

[app.side]
allow_root = true
kind = "process"
directory = "@DIR@"
command = ["/bin/sleep", "3600"]
`
	tests := []struct {
		name string
		end  func(t *testing.T, s *pid1Sup, main control.AppStatus)
		want int
	}{
		{"kill -9", func(t *testing.T, s *pid1Sup, main control.AppStatus) {
			if err := syscall.Kill(s.hostPID(main.MasterPID), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}, 128 + int(syscall.SIGKILL)},
		{"exit 3", func(t *testing.T, s *pid1Sup, main control.AppStatus) {
			if err := os.WriteFile(filepath.Join(s.Dir, "exit-now"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startPID1(t, e2e.Options{Config: cfg})
			main := s.WaitState("main", control.StateRunning, 30*time.Second)
			s.WaitState("side", control.StateRunning, 30*time.Second)
			at := time.Now()
			tc.end(t, s, main)
			code := s.Wait(60 * time.Second)
			t.Logf("%s: supervisor exit %d, %s after main ended", tc.name, code, time.Since(at).Round(time.Millisecond))
			if code != tc.want {
				t.Errorf("supervisor exit status %d, want %d\n%s", code, tc.want, s.Output())
			}
			if !strings.Contains(s.Output(), "exit_with app exited; stopping") {
				t.Errorf("no 'exit_with app exited' line in the output")
			}
		})
	}
}

// TestPID1SecondInterruptKills: the first INT starts a graceful stop that
// an app ignoring TERM would hold for its 60 s stop_timeout; the second INT,
// more than 1 s later, kills what remains, and the supervisor exits at once.
func TestPID1SecondInterruptKills(t *testing.T) {
	cfg := e2e.Config{ShutdownTimeout: "120s"}.String() + `
[app.stubborn]
allow_root = true
kind = "process"
directory = "@DIR@"
command = ["/bin/sh", "-c", "trap '' TERM; sleep 3600"]
stop_timeout = "60s"
`
	s := startPID1(t, e2e.Options{Config: cfg})
	s.WaitState("stubborn", control.StateRunning, 30*time.Second)
	first := time.Now()
	s.signal(syscall.SIGINT)
	s.WaitOutput("msg=stopping signal=interrupt", 30*time.Second)
	s.WaitState("stubborn", control.StateStopping, 30*time.Second)
	if s.Exited() {
		t.Fatalf("supervisor exited after the first INT (an app ignoring TERM has 60 s):\n%s", s.Output())
	}
	// An INT within 1 s of the first is the same one (see
	// TestPID1TwoTermsDrain): this one comes later.
	time.Sleep(time.Until(first.Add(1500 * time.Millisecond)))
	second := time.Now()
	s.signal(syscall.SIGINT)
	code := s.Wait(30 * time.Second)
	if code == -1 {
		t.Fatalf("supervisor still running 30 s after the second INT (stop_timeout is 60 s)")
	}
	t.Logf("second INT %s after the first; supervisor exit %d, %s after the second INT",
		second.Sub(first).Round(time.Millisecond), code, time.Since(second).Round(time.Millisecond))
	if _, after, ok := strings.Cut(s.Output(), "msg=stopping"); !ok || !strings.Contains(after, "second stop signal: killing what remains") {
		t.Errorf("no 'second stop signal' line in the output")
	} else {
		from, ok1 := logTime(after, "second stop signal")
		to, ok2 := logTime(after, "supervisor stopped")
		if ok1 && ok2 {
			t.Logf("by the supervisor's log: second INT to \"supervisor stopped\" %s", to.Sub(from).Round(time.Millisecond))
		}
		t.Logf("supervisor output from the first INT on:\n%s", after)
	}
}

// TestPID1HangupDoesNotKill: as PID 1 a signal without a handler would be
// dropped, but one with the default action (HUP terminates) must not end the
// supervisor either: it logs and carries on.
func TestPID1HangupDoesNotKill(t *testing.T) {
	cfg := e2e.Config{ShutdownTimeout: "30s"}.String() + `
[app.idle]
allow_root = true
kind = "process"
directory = "@DIR@"
command = ["/bin/sleep", "3600"]
`
	s := startPID1(t, e2e.Options{Config: cfg})
	before := s.WaitState("idle", control.StateRunning, 30*time.Second)
	s.signal(syscall.SIGHUP)
	s.WaitOutput("SIGHUP", 30*time.Second)
	after := s.App("idle")
	if s.Exited() || after.State != control.StateRunning || after.MasterPID != before.MasterPID {
		t.Fatalf("after HUP: exited=%v, app %s pid %d (was %d)", s.Exited(), after.State, after.MasterPID, before.MasterPID)
	}
	for _, line := range strings.Split(s.Output(), "\n") {
		if strings.Contains(line, "SIGHUP") {
			t.Logf("HUP as PID 1: %s", line)
		}
	}
	s.signal(syscall.SIGTERM)
	if code := s.Wait(60 * time.Second); code != 0 {
		t.Errorf("supervisor exit status %d after TERM, want 0", code)
	}
}

func writeRelease(t *testing.T, dir string, v testenv.Variant) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.WriteRelease(t, dir, testenv.Release{Version: "1", Variant: v})
}

// inflightDone reads the time testApp wrote into a NAME.done file.
func inflightDone(path string) (time.Time, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, err
	}
	secs, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", path, err)
	}
	return time.Unix(0, int64(secs*1e9)), nil
}

// logTime returns the time= of the first line of the supervisor's output
// (slog's text format) containing substr.
func logTime(out, substr string) (time.Time, bool) {
	for _, line := range strings.Split(out, "\n") {
		if !strings.Contains(line, substr) {
			continue
		}
		v, ok := strings.CutPrefix(line, "time=")
		if !ok {
			return time.Time{}, false
		}
		v, _, _ = strings.Cut(v, " ")
		ts, err := time.Parse(time.RFC3339Nano, v)
		return ts, err == nil
	}
	return time.Time{}, false
}
