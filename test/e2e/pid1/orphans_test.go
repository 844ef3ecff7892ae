package pid1

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// orphansConfig: app orphans double-forks 1000 short-lived grandchildren
// (each subshell exits at once, so its `sleep 0.01` re-parents to PID 1, the
// supervisor), then waits; app seven exits 7 as soon as the churn has begun.
var orphansConfig = e2e.Config{ShutdownTimeout: "30s"}.String() + `
[app.orphans]
allow_root = true
kind = "process"
directory = "@DIR@"
command = ["/bin/sh", "-c", "touch @DIR@/churn; for i in $(seq 1000); do (sleep 0.01 &); done; echo spawned 1000; sleep 3600"]
restart = "never"

[app.seven]
allow_root = true
kind = "process"
directory = "@DIR@"
command = ["/bin/sh", "-c", "while [ ! -e @DIR@/churn ]; do sleep 0.01; done; sleep 0.3; exit 7"]
restart = "never"
`

const grandchild = "sleep 0.01"

// TestPID1ReapsOrphans: as PID 1, the supervisor reaps 1000 re-parented
// grandchildren (no zombie is left 1 s after the last one exits) and still
// reports the exit code of a managed app that exits among them.
func TestPID1ReapsOrphans(t *testing.T) {
	s := startPID1(t, e2e.Options{Config: orphansConfig})
	churn := filepath.Join(s.Dir, "churn")

	var (
		start       time.Time
		maxZombies  int
		reparented  = map[int]bool{} // host pids of grandchildren seen as the supervisor's children
		grandkids   = map[int]bool{}
		scans       int
		spawnedSeen time.Time
		lastScan    time.Time
	)
	testenv.WaitFor(t, 30*time.Second, "the churn to begin", func() bool {
		_, err := os.Stat(churn)
		return err == nil
	})
	start = time.Now()
	testenv.WaitFor(t, 300*time.Second, "app orphans to spawn its 1000 grandchildren", func() bool {
		// Scanning /proc competes with the fork loop for the CPU: look
		// every 100 ms only.
		if time.Since(lastScan) < 100*time.Millisecond {
			return strings.Contains(s.Output(), "orphans[1] stdout: spawned 1000")
		}
		lastScan = time.Now()
		procs := s.procs()
		scans++
		if z := zombies(procs); z > maxZombies {
			maxZombies = z
		}
		for _, p := range procs {
			if p.Cmdline != grandchild {
				continue
			}
			grandkids[p.HostPID] = true
			if p.PPID == s.HostPID {
				reparented[p.HostPID] = true
			}
		}
		return strings.Contains(s.Output(), "orphans[1] stdout: spawned 1000")
	})
	spawnedSeen = time.Now()
	t.Logf("fork loop: 1000 double forks in %s; %d scans saw %d grandchildren, %d of them re-parented to the supervisor; at most %d zombies at once during the churn",
		spawnedSeen.Sub(start).Round(time.Millisecond), scans, len(grandkids), len(reparented), maxZombies)
	if len(reparented) == 0 {
		t.Errorf("no grandchild was ever seen as a child of the supervisor (host pid %d): the test does not test re-parenting", s.HostPID)
	}

	// The last grandchildren exit about 10 ms after the loop ends.
	var lastExit time.Time
	testenv.WaitFor(t, 30*time.Second, "every grandchild to exit", func() bool {
		for _, p := range s.procs() {
			if p.Cmdline == grandchild && p.State != 'Z' {
				return false
			}
		}
		lastExit = time.Now()
		return true
	})
	var left []nsProc
	testenv.WaitFor(t, time.Second, "no zombie in the namespace 1 s after the last grandchild exited", func() bool {
		left = nil
		for _, p := range s.procs() {
			if p.State == 'Z' {
				left = append(left, p)
			}
		}
		return len(left) == 0
	})
	t.Logf("zombies: 0, %s after the last grandchild was seen alive (%s after the loop ended)",
		time.Since(lastExit).Round(time.Millisecond), time.Since(spawnedSeen).Round(time.Millisecond))

	seven := s.WaitState("seven", control.StateStopped, 30*time.Second)
	if seven.LastExit == nil || seven.LastExit.Code != 7 || seven.LastExit.Signal != 0 {
		t.Errorf("app seven: last_exit %+v, want code 7", seven.LastExit)
	} else {
		t.Logf("app seven: last_exit code %d at %s into the churn (the loop ran %s); restarts %d; message %q",
			seven.LastExit.Code, seven.LastExit.Time.Sub(start).Round(time.Millisecond), spawnedSeen.Sub(start).Round(time.Millisecond), seven.Restarts, seven.Message)
	}
	if seven.Restarts != 0 {
		t.Errorf("app seven (restart = never) restarted %d times", seven.Restarts)
	}
	orphans := s.App("orphans")
	if orphans.State != control.StateRunning || orphans.Restarts != 0 {
		t.Errorf("app orphans: state %s, %d restarts; want running, 0 (its grandchildren's exits are not its own)", orphans.State, orphans.Restarts)
	}

	s.signal(syscall.SIGTERM)
	if code := s.Wait(60 * time.Second); code != 0 {
		t.Errorf("supervisor exit status %d after TERM, want 0", code)
	}
}
