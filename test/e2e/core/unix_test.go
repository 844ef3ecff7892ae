package core

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// unixConfig is web on the Unix socket @DIR@/web.sock, mode 0660.
var unixConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{
	{Listen: []string{"unix://@DIR@/web.sock"}, Extra: "socket_mode = \"0660\"\n"},
}}.String()

// assertUnixServes checks path is a socket file and answers GET / with the
// release's body.
func assertUnixServes(t *testing.T, path, when string) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("%s: socket path: %v", when, err)
	}
	if st.Mode()&os.ModeSocket == 0 {
		t.Fatalf("%s: %s is %v, not a socket", when, path, st.Mode())
	}
	code, body, err := testenv.GetUnix(path, "/")
	if err != nil || code != 200 || body != "version=1\n" {
		t.Fatalf("%s: GET / over %s: %d %q %v", when, path, code, body, err)
	}
}

// TestUnixSocketSurvives: with a Unix socket listener, kill -9 of the
// master under load loses no request, and the socket path exists and serves
// after the kill, after `supctl restart` and after `supctl stop` + `start`.
func TestUnixSocketSurvives(t *testing.T) {
	s := startWeb(t, unixConfig)
	path := filepath.Join(s.Dir, "web.sock")
	before := s.WaitState("web", control.StateRunning, 30*time.Second)
	if got := s.Addr("web"); got != path {
		t.Errorf("bound address %q, want %q", got, path)
	}
	assertUnixServes(t, path, "at start")

	// kill -9 under load.
	load := e2e.StartLoad("unix", path, "/", 16)
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 200 })
	if err := syscall.Kill(before.MasterPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after control.AppStatus
	testenv.WaitFor(t, 30*time.Second, "new master running", func() bool {
		after = s.App("web")
		return after.State == control.StateRunning && after.MasterPID != before.MasterPID
	})
	n := load.Snapshot().OK
	testenv.WaitFor(t, 20*time.Second, "new master serving", func() bool { return load.Snapshot().OK > n+500 })
	res := load.Stop()
	t.Logf("unix socket, kill -9 under load (16 conns): %s; restarts=%d last_exit=%v", res, after.Restarts, after.LastExit)
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
	if after.Restarts != 1 || after.LastExit == nil || after.LastExit.Signal != int(syscall.SIGKILL) {
		t.Errorf("status after kill: restarts=%d last_exit=%v; want 1 restart and signal 9", after.Restarts, after.LastExit)
	}
	assertUnixServes(t, path, "after kill -9")

	// supctl restart under load.
	load = e2e.StartLoad("unix", path, "/", 16)
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
	start := time.Now()
	if out, code := s.SupctlRun("restart", "web"); code != 0 {
		load.Stop()
		t.Fatalf("supctl restart web: exit %d: %s", code, out)
	}
	restarted := s.WaitState("web", control.StateRunning, 30*time.Second)
	took := time.Since(start)
	n = load.Snapshot().OK
	testenv.WaitFor(t, 20*time.Second, "restarted master serving", func() bool { return load.Snapshot().OK > n+200 })
	res = load.Stop()
	t.Logf("unix socket, supctl restart under load (16 conns): %s; running again after %s (master %d -> %d)", res, took.Round(time.Millisecond), after.MasterPID, restarted.MasterPID)
	if restarted.MasterPID == after.MasterPID {
		t.Errorf("restart kept master %d", after.MasterPID)
	}
	if res.Failed() != 0 {
		t.Errorf("restart: %d failed requests: %v", res.Failed(), res.Errors)
	}
	assertUnixServes(t, path, "after supctl restart")

	// supctl stop: the path goes (a stopped app refuses connections, so a
	// proxy fails over at once). Then start serves on the same path.
	if out, code := s.SupctlRun("stop", "web"); code != 0 {
		t.Fatalf("supctl stop web: exit %d: %s", code, out)
	}
	if st := s.App("web"); st.State != control.StateStopped || st.MasterPID != 0 {
		t.Errorf("after stop: state %s master %d, want stopped and no master", st.State, st.MasterPID)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after stop: socket path %s: %v, want it removed", path, err)
	}
	if out, code := s.SupctlRun("start", "web"); code != 0 {
		t.Fatalf("supctl start web: exit %d: %s", code, out)
	}
	s.WaitState("web", control.StateRunning, 30*time.Second)
	assertUnixServes(t, path, "after supctl stop + start")
}
