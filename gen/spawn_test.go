package gen

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/contain"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload/strategy"
)

// processApp loads a process app running command (sh -c) from a
// configuration in a temporary directory, and returns a Spawner with a
// real reaper and the app's parts (its log captured in memory).
func processApp(t *testing.T, command string) (*Spawner, App) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "supervisor.toml")
	text := fmt.Sprintf("[supervisor]\nrun_dir = %q\nhttp = \"\"\ncontrol_socket = %q\n[app.p]\nallow_root = true\nkind = \"process\"\ncommand = [\"/bin/sh\", \"-c\", %q]\nstop_timeout = \"10s\"\n",
		filepath.Join(dir, "run"), filepath.Join(dir, "c.sock"), command)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	reaper := proc.NewReaper()
	t.Cleanup(reaper.Close)
	app := cfg.App("p")
	l, err := logs.OpenApp(app, io.Discard, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := logs.CloseApps(5*time.Second, l); err != nil {
			t.Error(err)
		}
	})
	s := &Spawner{Reaper: reaper, RunDir: cfg.Supervisor.RunDir, Homes: &contain.Homes{Managed: reaper.Managed, Logger: logger}, Logger: logger}
	return s, App{Cfg: app, Log: l}
}

// TestSpawnCrash spawns a process that prints a Python traceback and
// exits 1: its exit, its last lines and its traceback are read back, and
// Finish records the crash in the app's log.
func TestSpawnCrash(t *testing.T) {
	s, app := processApp(t, `echo started; printf 'Traceback (most recent call last):\n  File "app.py", line 1, in <module>\nValueError: boom\n' >&2; exit 1`)
	g, err := s.Spawn(context.Background(), app, Request{ID: 7, Strategy: strategy.Restart})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-g.Done():
	case <-time.After(30 * time.Second):
		g.Kill()
		t.Fatal("the process did not exit within 30 s")
	}
	if e := g.Exit(); e.Code != 1 {
		t.Errorf("exit %s, want code 1", e)
	}
	if tail := g.Tail(); !slices.Contains(tail, "started") {
		t.Errorf("tail %q lacks the stdout line", tail)
	}
	if _, exception := g.Traceback(); exception != "ValueError: boom" {
		t.Errorf("exception %q, want ValueError: boom", exception)
	}
	if info := g.Info(); info.ID != 7 || info.PID != g.PID || info.Dir == "" || info.ProbeAddr != "" {
		t.Errorf("info %+v: want ID 7, its pid, a release dir and no probe listener", info)
	}
	s.Finish(g, app.Log, time.Second)
	if got := app.Log.Crashed(); got != 7 {
		t.Errorf("the log's crashed generation is %d, want 7", got)
	}
	if h := g.Handover(); h.ID != 7 || h.PID != g.PID || h.AccessFD != -1 {
		t.Errorf("handover %+v: want ID 7, its pid, no access pipe", h)
	}
}

// TestSpawnStop stops a running process with TERM: the exit is the
// signal's and Finish notes no crash.
func TestSpawnStop(t *testing.T) {
	s, app := processApp(t, `echo up; exec sleep 3600`)
	g, err := s.Spawn(context.Background(), app, Request{ID: 1, Strategy: strategy.Restart})
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the process's first line", func() bool { return slices.Contains(g.Tail(), "up") })
	e, err := g.Stop(context.Background(), syscall.SIGTERM, 10*time.Second)
	if err != nil || e.Signal != int(syscall.SIGTERM) {
		t.Fatalf("stop: exit %s, err %v; want killed by TERM", e, err)
	}
	s.Finish(g, app.Log, time.Second)
	if got := app.Log.Crashed(); got != 0 {
		t.Errorf("the log's crashed generation is %d after a stop, want 0", got)
	}
}

// TestCommand runs a health-check command in the app's environment: its
// output and its exit status as a shell reports it.
func TestCommand(t *testing.T) {
	s, app := processApp(t, `exec sleep 3600`)
	out, code, err := Command{Spawner: s, App: app.Cfg}.Run(context.Background(), []string{"/bin/sh", "-c", "echo ok; exit 3"})
	if err != nil || code != 3 || strings.TrimSpace(string(out)) != "ok" {
		t.Errorf("output %q, code %d, err %v; want ok, 3, nil", out, code, err)
	}
}
