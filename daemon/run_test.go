package daemon

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/control"
)

// Run returns when its context ends, after stopping the apps as a TERM
// would: exit status 0, the app's process gone, the control socket removed.
func TestRunStopsAppsWhenContextEnds(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "c.sock")
	cfgPath := filepath.Join(dir, "supervisor.toml")
	toml := `
[supervisor]
control_socket = "` + sock + `"
http = ""
run_dir = "` + dir + `/run"
shutdown_timeout = "20s"

[app.sleeper]
allow_root = true
kind = "process"
command = ["/bin/sleep", "3600"]
`
	if err := os.WriteFile(cfgPath, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	d := &Daemon{Config: cfg, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stdout: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	pid := waitRunning(t, control.NewClient(sock), done)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after the context ended = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
	if err := unix.Kill(pid, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("the app's process %d is still there after Run returned (kill 0: %v)", pid, err)
		_ = unix.Kill(pid, unix.SIGKILL) // clean up what the test found
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("control socket left behind: %v", err)
	}
}

// waitRunning polls the control API until the app runs and returns its PID.
func waitRunning(t *testing.T, c *control.Client, done <-chan error) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			t.Fatalf("Run returned before the app ran: %v", err)
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
