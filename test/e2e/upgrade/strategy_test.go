package upgrade

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// usr2Config runs one Gunicorn app reloaded by USR2 from a `current` link.
var usr2Config = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{
	{Directory: "@DIR@/current", Extra: "\n[app.web.reload]\nstrategy = \"usr2\"\n"},
}}.String()

// TestUpgradeKeepsUSR2: a usr2 app started from its `current` link keeps
// its strategy across `supctl upgrade`: the next deploy is a real USR2
// re-exec that follows the link, not a fallback to swap (the hand-over must
// carry the generation's FollowsLink).
func TestUpgradeKeepsUSR2(t *testing.T) {
	t.Parallel() // no load (see TestMain)
	s := startSupWith(t, usr2Config, func(dir string) {
		for _, v := range []string{"1", "2"} {
			rel := filepath.Join(dir, "releases", v)
			if err := os.MkdirAll(rel, 0o755); err != nil {
				t.Fatal(err)
			}
			testenv.WriteRelease(t, rel, testenv.Release{Version: v})
		}
		if err := os.Symlink(filepath.Join(dir, "releases", "1"), filepath.Join(dir, "current")); err != nil {
			t.Fatal(err)
		}
	})
	before := e2e.FindApp(t, s.WaitRunning(90*time.Second, "web"), "web")

	s.installFile(s.v2)
	if out, code := s.SupctlRun("upgrade"); code != 0 {
		t.Fatalf("supctl upgrade: exit %d: %s", code, out)
	}
	testenv.WaitFor(t, 60*time.Second, "upgraded to v2", func() bool {
		st := s.Status()
		return st.Supervisor.Version == "v2" && st.Supervisor.Upgrades == 1
	})
	if got := e2e.FindApp(t, s.Status(), "web"); got.MasterPID != before.MasterPID {
		t.Fatalf("upgrade replaced the web master %d with %d", before.MasterPID, got.MasterPID)
	}

	out, code := s.SupctlRun("deploy", "web", filepath.Join(s.Dir, "releases", "2"))
	t.Logf("deploy after upgrade: exit %d:\n%s", code, out)
	if code != 0 {
		t.Fatalf("supctl deploy: exit %d", code)
	}
	if strings.Contains(out, "using swap") || !strings.Contains(out, "sending USR2") {
		t.Errorf("deploy after the upgrade did not reload by USR2:\n%s", out)
	}
	web := s.WaitRunning(60*time.Second, "web")
	addr := e2e.FindApp(t, web, "web").Listeners[0].Bound
	testenv.WaitFor(t, 30*time.Second, "release 2 serving", func() bool {
		code, body, err := testenv.Get(addr, "/")
		return err == nil && code == 200 && body == "version=2\n"
	})
	if a := e2e.FindApp(t, web, "web"); a.State != control.StateRunning || a.MasterPID == before.MasterPID {
		t.Errorf("after deploy: state %s master %d (was %d)", a.State, a.MasterPID, before.MasterPID)
	}
}
