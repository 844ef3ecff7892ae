package recovery

import (
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/proc"
)

// startGroup starts a shell and a child in a process group of their own
// (an orphan generation as a predecessor left it) and returns the group;
// the test kills and reaps it at its end.
func startGroup(t *testing.T) ProcGroup {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "sleep 300 & wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // the exit status is not what the test checks
		close(waited)
	}()
	pid := cmd.Process.Pid
	t.Cleanup(func() {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // gone already when drained
		<-waited
	})
	started, err := proc.StartTime(pid)
	if err != nil {
		t.Fatal(err)
	}
	return ProcGroup{PGID: pid, Leader: started}
}

// TestDrainUnadopted: once ready, the orphans of an app no generation
// adopted are drained and after is called for it; an adopted app's orphans
// are left running and after is not called for it.
func TestDrainUnadopted(t *testing.T) {
	web, old := startGroup(t), startGroup(t)
	o := &Orphans{
		apps:    map[string]AppRun{"web": {Groups: []ProcGroup{web}}, "old": {Groups: []ProcGroup{old}}},
		adopted: map[string]bool{"web": true},
		logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
		runDir:  t.TempDir(),
	}
	var after []string
	readyAsked := 0
	ready := func() bool { readyAsked++; return readyAsked > 1 }
	grace := func(string) time.Duration { return 5 * time.Second }
	o.DrainUnadopted(t.Context(), time.Minute, ready, grace, func(app string) { after = append(after, app) })
	if readyAsked < 2 {
		t.Errorf("drained after %d readiness polls, want it to wait until ready", readyAsked)
	}
	if !slices.Equal(after, []string{"old"}) {
		t.Errorf("after called for %q, want [old]", after)
	}
	tree, err := proc.Scan("")
	if err != nil {
		t.Fatal(err)
	}
	if left := GroupMembers(tree, old); len(left) != 0 {
		t.Errorf("unadopted orphans left after the drain: %v", left)
	}
	if live := GroupMembers(tree, web); len(live) == 0 {
		t.Error("the adopted app's orphans were drained")
	}
}
