package pid1

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/supervise"
)

// slowWebConfig: one Gunicorn app (the Slow release: GET /?ms=N answers
// after N ms) with four workers, so that load on three connections and one
// long request are all served at once.
const slowWebConfig = `
[supervisor]
control_socket = "@SOCK@"
http = ""
run_dir = "@DIR@/run"
shutdown_timeout = "60s"

[app.web]
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 4
listen = ["tcp://127.0.0.1:0"]
stop_timeout = "30s"
`

// longRequest is how long the request in flight at TERM takes.
const longRequest = 3 * time.Second

// TestPID1TermUnderLoadDrains: TERM to the supervisor as PID 1 while it
// serves load drains Gunicorn gracefully: a request in flight when the
// signal arrives is answered, and the supervisor exits 0.
func TestPID1TermUnderLoadDrains(t *testing.T) {
	s := startPID1(t, e2e.Options{Config: slowWebConfig, Setup: func(dir string) {
		writeRelease(t, filepath.Join(dir, "app"), testenv.Slow)
	}})
	s.WaitState("web", supervise.StateRunning, 60*time.Second)
	addr := s.Addr("web")
	port := portOf(t, addr)

	load := e2e.StartLoad("tcp", addr, "/?ms=50", 3)
	defer load.Stop()
	testenv.WaitFor(t, 30*time.Second, "load served", func() bool { return load.Snapshot().OK >= 30 })

	// One long request, in a worker's hands when TERM arrives: once it is
	// connected, an empty accept queue means a worker has accepted it.
	dialed := make(chan struct{})
	var dialOnce sync.Once
	type answer struct {
		status int
		body   string
		err    error
		took   time.Duration
	}
	answered := make(chan answer, 1)
	go func() {
		tr := &http.Transport{Proxy: nil, DisableKeepAlives: true, DialContext: func(ctx context.Context, network, a string) (net.Conn, error) {
			var d net.Dialer
			c, err := d.DialContext(ctx, network, a)
			dialOnce.Do(func() { close(dialed) })
			return c, err
		}}
		defer tr.CloseIdleConnections()
		c := &http.Client{Transport: tr, Timeout: 60 * time.Second}
		start := time.Now()
		resp, err := c.Get("http://" + addr + "/?ms=" + strconv.Itoa(int(longRequest/time.Millisecond)))
		if err != nil {
			answered <- answer{err: err, took: time.Since(start)}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{status: resp.StatusCode, body: string(b), err: err, took: time.Since(start)}
	}()
	<-dialed
	testenv.WaitFor(t, 10*time.Second, "the long request to be accepted (empty accept queue)", func() bool {
		ls := listeners(t, port)
		return len(ls) == 1 && ls[0].Queue == 0
	})
	before := load.Snapshot()
	termAt := time.Now()
	s.signal(syscall.SIGTERM)

	code := s.Wait(90 * time.Second)
	exitedAfter := time.Since(termAt)
	res := load.Stop()
	a := <-answered
	t.Logf("TERM under load: supervisor exit %d %s after TERM; long request: status %d in %s (err %v); load before TERM: ok=%d; whole run: %s",
		code, exitedAfter.Round(time.Millisecond), a.status, a.took.Round(time.Millisecond), a.err, before.OK, res)
	if _, after, ok := strings.Cut(s.Output(), "msg=stopping"); ok {
		t.Logf("supervisor output from TERM on:\n%s", after)
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
	const cfg = `
[supervisor]
control_socket = "@SOCK@"
http = ""
run_dir = "@DIR@/run"
shutdown_timeout = "30s"
exit_with = "main"

[app.main]
kind = "process"
directory = "@DIR@"
command = ["/bin/sh", "-c", "while [ ! -e @DIR@/exit-now ]; do sleep 0.02; done; exit 3"]

[app.side]
kind = "process"
directory = "@DIR@"
command = ["/bin/sleep", "3600"]
`
	tests := []struct {
		name string
		end  func(t *testing.T, s *pid1Sup, main supervise.AppSnapshot)
		want int
	}{
		{"kill -9", func(t *testing.T, s *pid1Sup, main supervise.AppSnapshot) {
			if err := syscall.Kill(s.hostPID(main.MasterPID), syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
		}, 128 + int(syscall.SIGKILL)},
		{"exit 3", func(t *testing.T, s *pid1Sup, main supervise.AppSnapshot) {
			if err := os.WriteFile(filepath.Join(s.Dir, "exit-now"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := startPID1(t, e2e.Options{Config: cfg})
			main := s.WaitState("main", supervise.StateRunning, 30*time.Second)
			s.WaitState("side", supervise.StateRunning, 30*time.Second)
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
// an app ignoring TERM would hold for its 60 s stop_timeout; the second INT
// kills what remains, and the supervisor exits at once.
func TestPID1SecondInterruptKills(t *testing.T) {
	const cfg = `
[supervisor]
control_socket = "@SOCK@"
http = ""
run_dir = "@DIR@/run"
shutdown_timeout = "120s"

[app.stubborn]
kind = "process"
directory = "@DIR@"
command = ["/bin/sh", "-c", "trap '' TERM; sleep 3600"]
stop_timeout = "60s"
`
	s := startPID1(t, e2e.Options{Config: cfg})
	s.WaitState("stubborn", supervise.StateRunning, 30*time.Second)
	first := time.Now()
	s.signal(syscall.SIGINT)
	waitOutput(t, s.Output, "msg=stopping signal=interrupt", 30*time.Second)
	s.WaitState("stubborn", supervise.StateStopping, 30*time.Second)
	if s.Exited() {
		t.Fatalf("supervisor exited after the first INT (an app ignoring TERM has 60 s):\n%s", s.Output())
	}
	second := time.Now()
	s.signal(syscall.SIGINT)
	code := s.Wait(30 * time.Second)
	if code == -1 {
		t.Fatalf("supervisor still running 30 s after the second INT (stop_timeout is 60 s)")
	}
	t.Logf("second INT %s after the first; supervisor exit %d, %s after the second INT",
		second.Sub(first).Round(time.Millisecond), code, time.Since(second).Round(time.Millisecond))
	if !strings.Contains(s.Output(), "second stop signal: killing what remains") {
		t.Errorf("no 'second stop signal' line in the output")
	}
}

// TestPID1HangupDoesNotKill: as PID 1 a signal without a handler would be
// dropped, but one with the default action (HUP terminates) must not end the
// supervisor either: it logs and carries on.
func TestPID1HangupDoesNotKill(t *testing.T) {
	const cfg = `
[supervisor]
control_socket = "@SOCK@"
http = ""
run_dir = "@DIR@/run"
shutdown_timeout = "30s"

[app.idle]
kind = "process"
directory = "@DIR@"
command = ["/bin/sleep", "3600"]
`
	s := startPID1(t, e2e.Options{Config: cfg})
	before := s.WaitState("idle", supervise.StateRunning, 30*time.Second)
	s.signal(syscall.SIGHUP)
	waitOutput(t, s.Output, "SIGHUP", 30*time.Second)
	after := s.App("idle")
	if s.Exited() || after.State != supervise.StateRunning || after.MasterPID != before.MasterPID {
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
