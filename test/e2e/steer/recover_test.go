package steer

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/recovery"
)

// TestRecoverAfterRenameSwitch: after a swap has moved the Unix socket's
// path to the new generation's own socket (a hidden name other than
// ".held"), the supervisor dies by SIGKILL under load and is started again:
// it finds the orphaned socket by the hidden name its run state recorded,
// takes it over, and no connection through the path fails; the listener
// is steered by rename again, and the new supervisor stops cleanly.
func TestRecoverAfterRenameSwitch(t *testing.T) {
	a := startApp(t, "unix", []testenv.Release{{Version: "v0"}, {Version: "v1"}})
	if _, r := a.reload(t, 1); r.Code != 0 {
		t.Fatalf("reload: exit %d:\n%s", r.Code, r.Out)
	}
	var hold string
	testenv.WaitFor(t, 10*time.Second, "the run state naming the switched socket", func() bool {
		st, err := recovery.ReadRunState(filepath.Join(a.Dir, "run"))
		if err != nil || st == nil || len(st.Apps["web"].Listeners) != 1 {
			return false
		}
		hold = st.Apps["web"].Listeners[0].Hold
		return strings.Contains(hold, ".web.sock.g")
	})
	load := e2e.StartLoad("unix", a.Sock, "/", 4)
	defer load.Stop()
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
	a.Kill9()
	second := e2e.Restart(t, a.Supervisor, e2e.Options{})
	second.WaitState("web", control.StateRunning, 30*time.Second)
	n := load.Snapshot().OK
	testenv.WaitFor(t, 20*time.Second, "load served by the restarted supervisor", func() bool { return load.Snapshot().OK > n+200 })
	res := load.Stop()
	t.Logf("kill -9 after a rename switch (socket at %s): %s", filepath.Base(hold), res)
	if !strings.Contains(second.Output(), "took over the listening sockets") {
		t.Errorf("the restarted supervisor did not take the orphans' socket over:\n%s", second.Output())
	}
	if res.Failed() != 0 {
		t.Errorf("unix socket load: %s", res)
	}
	testenv.WaitFor(t, 60*time.Second, "the recovery's reload ended", func() bool {
		st := second.App("web")
		return st.Generation >= 1 && !st.Reloading
	})
	if st := second.App("web"); len(st.Listeners) != 1 || st.Listeners[0].Steering != "rename" {
		t.Errorf("listeners after recovery: %+v, want one steered by rename", st.Listeners)
	}
	(&app{Supervisor: second}).checkCleanStop(t)
}
