package daemon

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/control"
)

// Run returns when its context ends, after stopping the apps as a TERM
// would: exit status 0, the app's process gone, the control socket removed.
func TestRunStopsAppsWhenContextEnds(t *testing.T) {
	r := startDaemon(t, daemonOpts{ShutdownTimeout: "20s", Body: `
[app.sleeper]
allow_root = true
kind = "process"
start_settle = "100ms"
command = ["/bin/sleep", "3600"]
`})
	pid := waitRunning(t, control.NewClient(r.Sock), r)
	if err := r.Stop(30 * time.Second); err != nil {
		t.Fatalf("Run after the context ended = %v, want nil", err)
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("the app's process %d is still there after Run returned (kill 0: %v)", pid, err)
		_ = unix.Kill(pid, unix.SIGKILL) // clean up what the test found
	}
	if _, err := os.Lstat(r.Sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind: %v", err)
	}
}

// waitRunning polls the control API until the app runs and returns its PID.
func waitRunning(t *testing.T, c *control.Client, r *daemonRun) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.exited:
			t.Fatalf("Run returned before the app ran: %v", r.err)
		case <-tick.C:
		}
		st, err := c.Status(context.Background(), "sleeper")
		if err == nil && st.Apps[0].State == control.StateRunning && st.Apps[0].MasterPID != 0 {
			return st.Apps[0].MasterPID
		}
		if time.Now().After(deadline) {
			t.Fatalf("the app did not run within 30 s (last: %+v, %v)", st, err)
		}
	}
}

// TestCleanStopRemovesPrevious: the copy of a previous image an upgrade
// keeps in run_dir (a tmpfs) is gone after a clean stop.
func TestCleanStopRemovesPrevious(t *testing.T) {
	r := startDaemon(t, daemonOpts{ShutdownTimeout: "20s", Body: `
[app.sleeper]
allow_root = true
kind = "process"
start_settle = "100ms"
command = ["/bin/sleep", "3600"]
`})
	waitRunning(t, control.NewClient(r.Sock), r)
	prev := r.D.previousPath()
	if err := os.WriteFile(prev, []byte("image"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(30 * time.Second); err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if _, err := os.Lstat(prev); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left after a clean stop: %v", prev, err)
	}
}
