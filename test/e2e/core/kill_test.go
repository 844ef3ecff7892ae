package core

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/supervise"
)

const webConfig = `
[supervisor]
control_socket = "@SOCK@"
http = ""
run_dir = "@DIR@/run"
shutdown_timeout = "30s"

[app.web]
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 2
listen = ["tcp://127.0.0.1:0"]
stop_timeout = "10s"
`

// TestKill9MasterUnderLoad: the master dies, the held socket keeps clients
// in the backlog, a new master serves: no refused, reset or non-2xx request.
func TestKill9MasterUnderLoad(t *testing.T) {
	s := startWeb(t, webConfig)
	addr := s.Addr("web")
	before := s.WaitState("web", supervise.StateRunning, 30*time.Second)

	load := e2e.StartLoad("tcp", addr, "/", 16)
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 200 })
	if err := syscall.Kill(before.MasterPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after supervise.AppSnapshot
	testenv.WaitFor(t, 30*time.Second, "new master running", func() bool {
		after = s.App("web")
		return after.State == supervise.StateRunning && after.MasterPID != before.MasterPID
	})
	// Keep the load on the new master for a while.
	n := load.Snapshot().OK
	testenv.WaitFor(t, 10*time.Second, "new master serving", func() bool { return load.Snapshot().OK > n+500 })
	res := load.Stop()
	t.Logf("kill -9 under load: %s", res)
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
	if after.Restarts != 1 || after.LastExit == nil || after.LastExit.Signal != int(syscall.SIGKILL) {
		t.Errorf("status after kill: restarts=%d last_exit=%v; want 1 restart and signal 9", after.Restarts, after.LastExit)
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
