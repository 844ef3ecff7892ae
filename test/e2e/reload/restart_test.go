package reload

import (
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// TestRestartDuringReload: `supctl restart` while a reload waits for its new
// generation (gated at import) cancels the reload, which stops the
// generation it started and fails naming the restart; the restart then
// replaces the serving generation. Afterwards exactly one Gunicorn master
// runs under the supervisor, the one status tracks, and `supctl stop` leaves
// none.
func TestRestartDuringReload(t *testing.T) {
	t.Parallel() // no load (see TestMain)
	for _, strategy := range []string{"swap", "usr2"} {
		t.Run(strategy, func(t *testing.T) {
			w := startWeb(t, webOpts{Strategy: strategy, Releases: versions(2), Gated: []int{1}})
			testenv.PointCurrent(t, w.Current, w.Dirs[1])
			rl := w.CtlAsync("reload", "web")
			w.waitNewGeneration(t, rl, strategy)
			during := w.supervisorTree()

			// A restart answers once its new generation is ready: that
			// generation runs the gated release, so the gate opens once
			// the reload ended.
			ra := w.CtlAsync("restart", "web")
			r := rl.Wait(t, 30*time.Second)
			w.OpenGate(1)
			rs := ra.Wait(t, 90*time.Second)
			t.Logf("restart during the reload (tree before: %s): exit %d in %v: %s", during, rs.Code, rs.Took.Round(time.Millisecond), strings.TrimSpace(rs.Out))
			t.Logf("the reload: exit %d:\n%s", r.Code, r.Out)
			if rs.Code != 0 {
				t.Fatalf("restart during a reload: exit %d", rs.Code)
			}
			if r.Code == 0 || !strings.Contains(r.Out, "restarting") {
				t.Errorf("the reload a restart cancelled: exit %d, want 1 naming the restart", r.Code)
			}
			w.checkOneMaster(t, "version=v1\n")

			if r := w.Ctl("stop", "web"); r.Code != 0 {
				t.Fatalf("stop: exit %d:\n%s", r.Code, r.Out)
			}
			if left := w.supervisorTree(); len(left.Children) != 0 {
				t.Errorf("after stop, the supervisor still has children: %s\n%s", left, strings.Join(left.All, "\n"))
			}
		})
	}
}

// waitNewGeneration waits until a reload's new generation exists and waits
// at its gate: for swap the reload says so; for usr2 the new master (the
// old one's child) has forked its workers.
func (w *web) waitNewGeneration(t *testing.T, rl *e2e.AsyncCtl, strategy string) {
	t.Helper()
	if strategy == "swap" {
		rl.WaitOutput(t, 60*time.Second, "waiting for readiness")
		return
	}
	testenv.WaitFor(t, 60*time.Second, "usr2 master with workers", func() bool {
		for _, line := range w.supervisorTree().All {
			if strings.HasPrefix(line, "    ") { // depth 2: a worker of the new master
				return true
			}
		}
		return false
	})
}

// checkOneMaster opens release 1's gate and waits until web runs as exactly
// one Gunicorn master, the one status tracks, answering want.
func (w *web) checkOneMaster(t *testing.T, want string) {
	t.Helper()
	w.OpenGate(1)
	w.WaitState("web", control.StateRunning, 60*time.Second)
	var tr tree
	var bad string
	testenv.WaitFor(t, 30*time.Second, "exactly one generation", func() bool {
		tr, bad = w.oneGeneration(2)
		return bad == ""
	})
	st := w.App("web")
	t.Logf("after: %s; status tracks pid %d (generation %d)", tr, st.MasterPID, st.Generation)
	if st.MasterPID != tr.Masters[0] {
		t.Errorf("status tracks pid %d, the only master is %d", st.MasterPID, tr.Masters[0])
	}
	if stale := probe(w.Addr, want, 20); len(stale) != 0 {
		t.Errorf("%d of 20 answers are not %q: %v", len(stale), want, stale)
	}
}
