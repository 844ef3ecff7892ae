package core

import (
	"context"
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

// webConfig is one Gunicorn app, web, of two workers on a TCP port.
var webConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{{}}}.String()

// TestKill9MasterUnderLoad: the master dies, the held socket keeps clients
// in the backlog, a new master serves: no refused, reset or non-2xx request.
func TestKill9MasterUnderLoad(t *testing.T) {
	s := startWeb(t, webConfig)
	addr := s.Addr("web")
	before := s.WaitState("web", control.StateRunning, 30*time.Second)

	load := e2e.StartLoad("tcp", addr, "/", 16)
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 200 })
	if err := syscall.Kill(before.MasterPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after control.AppStatus
	testenv.WaitFor(t, 30*time.Second, "new master running", func() bool {
		after = s.App("web")
		return after.State == control.StateRunning && after.MasterPID != before.MasterPID
	})
	// The killed master's pidfile does not stay in run_dir.
	testenv.WaitFor(t, 10*time.Second, "the killed master's pidfile removed", func() bool {
		return len(pidfilesNaming(t, filepath.Join(s.Dir, "run"), before.MasterPID)) == 0
	})
	// Keep the load on the new master for a while.
	n := load.Snapshot().OK
	testenv.WaitFor(t, 10*time.Second, "new master serving", func() bool { return load.Snapshot().OK > n+500 })
	res := load.Stop()
	t.Logf("kill -9 under load (16 conns): %s; status restarts=%d last_exit=%v", res, after.Restarts, after.LastExit)
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
	if after.Restarts != 1 || after.LastExit == nil || after.LastExit.Signal != int(syscall.SIGKILL) {
		t.Errorf("status after kill: restarts=%d last_exit=%v; want 1 restart and signal 9", after.Restarts, after.LastExit)
	}
}

// TestKill9MasterUnderHey is the acceptance run: the real `hey -c 16 -z 10s`
// while the master is killed with SIGKILL about 3 s in; hey must see no
// failed request.
func TestKill9MasterUnderHey(t *testing.T) {
	s := startWeb(t, webConfig)
	before := s.WaitState("web", control.StateRunning, 30*time.Second)
	addr := s.Addr("web")

	type heyResult struct {
		h   e2e.Hey
		err error
	}
	done := make(chan heyResult, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	go func() {
		h, err := e2e.RunHey(ctx, "-c", "16", "-z", "10s", "http://"+addr+"/")
		done <- heyResult{h, err}
	}()
	// The kill is part of the scenario ("3 s into the run"), not a wait for
	// a condition: a timer is the right tool.
	killAt := time.NewTimer(3 * time.Second)
	defer killAt.Stop()
	select {
	case r := <-done:
		t.Fatalf("hey ended before the kill: %v\n%s", r.err, r.h.Output)
	case <-killAt.C:
	}
	if err := syscall.Kill(before.MasterPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var after control.AppStatus
	testenv.WaitFor(t, 30*time.Second, "new master running", func() bool {
		after = s.App("web")
		return after.State == control.StateRunning && after.MasterPID != before.MasterPID
	})
	recovered := time.Since(killed)
	r := <-done
	if r.err != nil {
		t.Fatalf("hey: %v", r.err)
	}
	t.Logf("hey -c 16 -z 10s with kill -9 at 3 s: requests=%d status=%v errors=%v p50=%s p99=%s; new master running %s after the kill",
		r.h.Requests, r.h.Status, r.h.Errors, r.h.P50, r.h.P99, recovered.Round(time.Millisecond))
	if r.h.Requests == 0 {
		t.Fatalf("hey parsed no requests:\n%s", r.h.Output)
	}
	if r.h.Failed() != 0 {
		t.Errorf("hey saw %d failed requests:\n%s", r.h.Failed(), r.h.Output)
	}
	if after.Restarts != 1 || after.LastExit == nil || after.LastExit.Signal != int(syscall.SIGKILL) {
		t.Errorf("status after kill: restarts=%d last_exit=%v; want 1 restart and signal 9", after.Restarts, after.LastExit)
	}
	// The new master serves after hey is done too.
	if code, body, err := testenv.Get(addr, "/"); err != nil || code != 200 || body != "version=1\n" {
		t.Errorf("GET / after the run: %d %q %v", code, body, err)
	}
}

func startWeb(t *testing.T, cfg string) *e2e.Supervisor {
	t.Helper()
	return e2e.Start(t, e2e.Options{Config: cfg, Setup: func(dir string) {
		if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.WriteRelease(t, filepath.Join(dir, "app"), testenv.Release{Version: "1"})
	}})
}

// pidfilesNaming lists the pidfiles (*.pid, *.pid.2) in runDir that hold pid.
func pidfilesNaming(t *testing.T, runDir string, pid int) []string {
	t.Helper()
	var found []string
	for _, pattern := range []string{"*.pid", "*.pid.2"} {
		names, err := filepath.Glob(filepath.Join(runDir, pattern))
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			if b, err := os.ReadFile(n); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
				found = append(found, n)
			}
		}
	}
	return found
}
