package core

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// webConfig is one Gunicorn app, web, of two workers on a TCP port.
var webConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{{}}}.String()

// TestKill9MasterUnderHey is the acceptance run: the real `hey -c 16`
// while the master is killed with SIGKILL; hey must see no failed request.
// With E2E_FULL=1 hey runs 10 s and the kill comes 3 s in (`hey -z 10s`);
// without (see e2e.Runs) the kill comes 1 s in and hey stops 2 s after a
// new master runs.
func TestKill9MasterUnderHey(t *testing.T) {
	s := startWeb(t, webConfig)
	before := s.WaitState("web", control.StateRunning, 30*time.Second)
	addr := s.Addr("web")

	hey := e2e.StartHey(t, "-c", "16", "http://"+addr+"/")
	// The kill is part of the scenario ("3 s into the run"), not a wait for
	// a condition: a timer is the right tool.
	killIn := time.Duration(e2e.Runs(3, 1)) * time.Second
	killAt := time.NewTimer(killIn)
	defer killAt.Stop()
	select {
	case <-hey.Done():
		h, err := hey.Stop(0)
		t.Fatalf("hey ended before the kill: %v\n%s", err, h.Output)
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
	h, err := hey.Stop(time.Duration(e2e.Runs(int(10*time.Second), int(hey.Elapsed()+2*time.Second))))
	ran := hey.Elapsed()
	if err != nil {
		t.Fatalf("hey: %v", err)
	}
	t.Logf("hey -c 16 for %v with kill -9 at %v: requests=%d status=%v errors=%v p50=%s p99=%s; new master running %s after the kill",
		ran.Round(100*time.Millisecond), killIn, h.Requests, h.Status, h.Errors, h.P50, h.P99, recovered.Round(time.Millisecond))
	if h.Requests == 0 {
		t.Fatalf("hey parsed no requests:\n%s", h.Output)
	}
	if h.Failed() != 0 {
		t.Errorf("hey saw %d failed requests:\n%s", h.Failed(), h.Output)
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
