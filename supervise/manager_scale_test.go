package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/status"
)

// realManager builds a Manager over the configuration text body (after a
// [supervisor] table pointing at a temporary run_dir) with a real reaper.
func realManager(t testing.TB, body string) *Manager {
	t.Helper()
	m, _ := realManagerAt(t, body)
	return m
}

// realManagerAt is realManager that also returns a function loading a new
// body in place of the first (the same file, for updates).
func realManagerAt(t testing.TB, body string) (*Manager, func(body string) (*config.Config, error)) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "supervisor.toml")
	load := func(body string) (*config.Config, error) {
		text := fmt.Sprintf("[supervisor]\nrun_dir = %q\nhttp = \"\"\ncontrol_socket = %q\n%s", filepath.Join(dir, "run"), filepath.Join(dir, "c.sock"), body)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			return nil, err
		}
		return config.Load(path)
	}
	cfg, err := load(body)
	if err != nil {
		t.Fatal(err)
	}
	reaper := proc.NewReaper()
	t.Cleanup(reaper.Close)
	m, err := NewManager(cfg, reaper, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return m, load
}

// waitAll polls m's snapshots until cond holds for every app, or fails
// after limit.
func waitAll(t testing.TB, m *Manager, limit time.Duration, what string, cond func(status.AppSnapshot) bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		ok := true
		for _, s := range m.Snapshots() {
			if !cond(s) {
				ok = false
				break
			}
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not every app %s within %v", what, limit)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
}

// TestManagerScale starts and stops SCALE_APPS (default 50, to keep the
// package's tests quick; `SCALE_APPS=500 go test -run TestManagerScale -v
// ./supervise/` gives the figure README quotes) process apps that exit on TERM and prints both
// durations. Apps with no order between them start and stop in parallel:
// the stop takes well under 1 s (3 s under the race detector).
func TestManagerScale(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hundreds of processes")
	}
	n := 50
	if v, err := strconv.Atoi(os.Getenv("SCALE_APPS")); err == nil && v > 0 {
		n = v
	}
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "[app.p%03d]\nallow_root = true\nkind = \"process\"\ncommand = [\"/bin/sleep\", \"3600\"]\nstop_timeout = \"10s\"\n", i)
	}
	m := realManager(t, b.String())
	ctx := context.Background()
	t0 := time.Now()
	m.Start(ctx)
	waitAll(t, m, 60*time.Second, "spawned", func(s status.AppSnapshot) bool { return s.MasterPID != 0 })
	started := time.Since(t0)
	t1 := time.Now()
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	stopped := time.Since(t1)
	t.Logf("%d process apps: start all (every one spawned) %v, stop all %v", n, started.Round(time.Millisecond), stopped.Round(time.Millisecond))
	fmt.Printf("SCALE %d apps: start %v stop %v\n", n, started.Round(time.Millisecond), stopped.Round(time.Millisecond))
	limit := time.Second
	if raceEnabled {
		limit = 3 * time.Second
	}
	if stopped > limit {
		t.Errorf("stop of %d apps took %v, want under %v", n, stopped, limit)
	}
}
