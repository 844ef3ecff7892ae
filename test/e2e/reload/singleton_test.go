package reload

import (
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
)

// singletonConfig is a process app that refuses to run twice: flock -n
// exits 1 when another instance holds the lock.
var singletonConfig = e2e.Config{}.String() + `
[app.beat]
kind = "process"
command = ["flock", "-n", "@DIR@/beat.lock", "-c", "echo started; exec sleep 1000"]
allow_root = true
stop_timeout = "5s"
`

// TestProcessRestartSingleton: with the default strategy for a process
// app (restart), twenty reloads (five without E2E_FULL=1, see e2e.Runs)
// of a flock-guarded singleton all succeed, each with a fresh pid: the new instance always found the lock free, so two
// never ran at once. One reload with --strategy overlap fails, showing the
// check sees an overlap.
func TestProcessRestartSingleton(t *testing.T) {
	t.Parallel() // waits on the clock (each restart takes about 2 s) (see TestMain)
	s := e2e.Start(t, e2e.Options{Config: singletonConfig})
	st := s.WaitState("beat", control.StateRunning, 30*time.Second)
	pid := st.MasterPID
	var took []time.Duration
	n := e2e.Runs(20, 5)
	for i := range n {
		start := time.Now()
		out, code := s.SupctlRun("reload", "beat")
		took = append(took, time.Since(start))
		if code != 0 {
			t.Fatalf("reload %d: exit %d:\n%s", i+1, code, out)
		}
		now := s.App("beat")
		if now.MasterPID == pid || now.State != control.StateRunning {
			t.Fatalf("reload %d: pid %d (was %d), state %s", i+1, now.MasterPID, pid, now.State)
		}
		pid = now.MasterPID
	}
	med, worst := stats(took)
	t.Logf("%d restart reloads of a singleton: median %v, max %v", n, med, worst)

	out, code := s.SupctlRun("reload", "--strategy", "overlap", "beat")
	t.Logf("overlap reload: exit %d:\n%s", code, out)
	if code == 0 {
		t.Errorf("an overlap reload of a flock singleton succeeded; the lock check does not see overlaps")
	}
	if now := s.App("beat"); now.State != control.StateRunning || now.MasterPID != pid {
		t.Errorf("after the failed overlap: state %s pid %d, want the serving instance %d", now.State, now.MasterPID, pid)
	}
}
