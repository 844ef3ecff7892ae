package core

import (
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// orphanConfig's app double-forks: "(cmd &)" runs cmd in a subshell that
// exits at once, so cmd re-parents to the nearest subreaper, the supervisor.
// One grandchild lives 3 s (to be seen re-parented), fifty exit at once.
var orphanConfig = e2e.Config{}.String() + `
[app.forker]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "(exec /bin/sleep 3 &); i=0; while [ $i -lt 50 ]; do (/bin/true &); i=$((i+1)); done; exec /bin/sleep 3600"]
`

// TestOrphansReaped: grandchildren re-parented to the supervisor are reaped
// when they exit (no zombie child of the supervisor remains), and their
// exits are not mistaken for the app's.
func TestOrphansReaped(t *testing.T) {
	t.Parallel() // waits on its app's sleeps (see TestMain)
	s := e2e.Start(t, e2e.Options{Config: orphanConfig})
	app := s.WaitState("forker", control.StateRunning, 30*time.Second)
	sup := s.Cmd.Process.Pid

	// The long grandchild: a child of the supervisor that is not the app.
	var orphan testenv.Stat
	testenv.WaitFor(t, 30*time.Second, "the sleeping grandchild re-parented to the supervisor", func() bool {
		for _, p := range testenv.Procs() {
			if p.PPID == sup && p.PID != app.MasterPID && p.Comm == "sleep" && p.PGID == app.MasterPID {
				orphan = p
				return true
			}
		}
		return false
	})
	t.Logf("grandchild %d re-parented to the supervisor %d (pgid %d, the app's)", orphan.PID, sup, orphan.PGID)

	// Once it has exited, no zombie child of the supervisor may remain.
	var zombies []int
	start := time.Now()
	testenv.WaitFor(t, 30*time.Second, "the grandchild gone and no zombie child of the supervisor", func() bool {
		zombies = zombies[:0]
		gone := true
		for _, p := range testenv.Procs() {
			if p.PID == orphan.PID {
				gone = false
			}
			if p.PPID == sup && p.State == 'Z' {
				zombies = append(zombies, p.PID)
			}
		}
		return gone && len(zombies) == 0
	})
	t.Logf("grandchild exited and was reaped; zombies of the supervisor: 0 (%s after it was seen)", time.Since(start).Round(time.Millisecond))

	after := s.App("forker")
	if after.State != control.StateRunning || after.MasterPID != app.MasterPID || after.Restarts != 0 || after.LastExit != nil {
		t.Errorf("app after its grandchildren exited: state %s master %d (was %d) restarts %d last_exit %v; want it untouched",
			after.State, after.MasterPID, app.MasterPID, after.Restarts, after.LastExit)
	}
}
