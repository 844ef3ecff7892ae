package steer

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

// TestRollbackUnix: on a rename-steered Unix listener with keep_previous,
// under 8 keep-alive connections, a deploy of v1 keeps the v0 generation
// (its socket keeps its hidden name), and `supctl rollback web` renames
// that name back over the path: new clients get v0 again, the v1
// generation drains, no request fails.
func TestRollbackUnix(t *testing.T) {
	var current string
	var dirs []string
	s := e2e.Start(t, e2e.Options{
		Config: e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{{
			Directory: "@DIR@/srv/current",
			Listen:    []string{"unix://@DIR@/web.sock"},
			Extra:     strings.Replace(e2e.WebGatedSwap, "[app.web.reload]\n", "[app.web.reload]\nkeep_previous = \"2m\"\n", 1),
		}}}.String(),
		Setup: func(dir string) {
			root := filepath.Join(dir, "srv")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			current, dirs = testenv.MakeReleaseTree(t, root, testenv.Release{Version: "v0"}, testenv.Release{Version: "v1"})
		},
	})
	s.WaitState("web", control.StateRunning, 60*time.Second)
	sock := filepath.Join(s.Dir, "web.sock")
	load := e2e.StartLoad("unix", sock, "/", 8)
	defer load.Stop()
	testenv.WaitFor(t, 20*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })

	if r := s.Ctl("deploy", "web", dirs[1]); r.Code != 0 || !strings.Contains(r.Out, "unsteered for a rollback") {
		t.Fatalf("deploy v1: exit %d, want the v0 generation kept:\n%s", r.Code, r.Out)
	}
	unixAnswers(t, sock, "v1")
	r := s.Ctl("rollback", "web")
	if r.Code != 0 || !strings.Contains(r.Out, "steered new connections back") {
		t.Fatalf("rollback: exit %d:\n%s", r.Code, r.Out)
	}
	t.Logf("rollback: %s", strings.TrimSpace(strings.SplitN(r.Out, "\n", 2)[0]))
	unixAnswers(t, sock, "v0")
	if got, err := filepath.EvalSymlinks(current); err != nil || got != dirs[0] {
		t.Errorf("current -> %s (%v), want %s", got, err, dirs[0])
	}
	testenv.WaitFor(t, 60*time.Second, "one generation left", func() bool { return s.App("web").Kept == nil && s.App("web").Processes == 3 })
	res := load.Stop()
	t.Logf("loader: %s", res)
	if res.Requests < 500 || res.Failed() > 0 || res.Bodies["version=v0"] == 0 || res.Bodies["version=v1"] == 0 {
		t.Errorf("loader: %d of %d failed, bodies %v (errors %v)", res.Failed(), res.Requests, res.Bodies, res.Errors)
	}
}

// unixAnswers checks that 20 fresh connections to sock get version.
func unixAnswers(t *testing.T, sock, version string) {
	t.Helper()
	for range 20 {
		st, body, err := testenv.GetUnix(sock, "/")
		if err != nil || st != 200 || body != "version="+version+"\n" {
			t.Fatalf("want %s on a fresh connection, got %d %q %v", version, st, body, err)
		}
	}
}
