package core

import (
	"context"
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
