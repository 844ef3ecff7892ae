package reload

import (
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/supervise"
)

// TestRestartDuringSwap: `supctl restart` while a swap reload waits for its
// new generation (gated at import) cancels the reload, which stops the
// generation it started; the restart then replaces the serving generation.
// Afterwards exactly one Gunicorn master runs under the supervisor, the one
// status tracks, and `supctl stop` leaves none.
func TestRestartDuringSwap(t *testing.T) {
	w := startWeb(t, webOpts{Releases: versions(2), Gated: []int{1}})
	testenv.PointCurrent(t, w.Current, w.Dirs[1])
	rl := w.ctlAsync("reload", "web")
	rl.WaitOutput(t, 60*time.Second, "waiting for readiness")
	during := w.supervisorTree()

	rs := w.ctl("restart", "web")
	r := rl.Wait(t, 30*time.Second)
	t.Logf("restart during the reload (tree before: %s): exit %d in %v: %s", during, rs.Code, rs.Took.Round(time.Millisecond), strings.TrimSpace(rs.Out))
	t.Logf("the reload: exit %d:\n%s", r.Code, r.Out)
	if rs.Code != 0 {
		t.Fatalf("restart during a reload: exit %d", rs.Code)
	}
	if r.Code == 0 {
		t.Errorf("the reload a restart cancelled reported success")
	}

	w.OpenGate(1)
	w.WaitState("web", supervise.StateRunning, 60*time.Second)
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
	if stale := probe(w.Addr, "version=v1\n", 20); len(stale) != 0 {
		t.Errorf("%d of 20 answers are not v1: %v", len(stale), stale)
	}

	if r := w.ctl("stop", "web"); r.Code != 0 {
		t.Fatalf("stop: exit %d:\n%s", r.Code, r.Out)
	}
	if left := w.supervisorTree(); len(left.Children) != 0 {
		t.Errorf("after stop, the supervisor still has children: %s\n%s", left, strings.Join(left.All, "\n"))
	}
}
