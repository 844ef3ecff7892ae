package core

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/testenv"
)

// checkMastersStoppedCleanly fails the test unless the log shows want
// Gunicorn masters completing their graceful stop ("Shutting down: Master",
// which Gunicorn logs only after it closed its sockets), every serving
// generation of web exiting 0, and no FileNotFoundError (a master that found
// its socket's name gone exits 1 before stopping its workers).
func checkMastersStoppedCleanly(t *testing.T, out string, want int) {
	t.Helper()
	if strings.Contains(out, "FileNotFoundError") {
		t.Errorf("a Gunicorn master failed to remove its socket's name:\n%s", out)
	}
	if n := strings.Count(out, "Shutting down: Master"); n < want {
		t.Errorf("%d masters completed their graceful stop, want %d", n, want)
	}
	exits := regexp.MustCompile(`msg=exited app=web .*`).FindAllString(out, -1)
	if len(exits) == 0 {
		t.Errorf("no exit of web logged")
	}
	for _, line := range exits {
		if !strings.Contains(line, `status="exit 0"`) {
			t.Errorf("web master did not exit 0: %s", line)
		}
	}
}

// TestUnixListenerShutdownIsClean: with a unix:// listener, stopping the
// supervisor lets the Gunicorn master finish its graceful stop (exit 0),
// and the socket path is gone afterwards.
func TestUnixListenerShutdownIsClean(t *testing.T) {
	s := startWeb(t, unixConfig)
	path := filepath.Join(s.Dir, "web.sock")
	s.WaitState("web", control.StateRunning, 30*time.Second)
	assertUnixServes(t, path, "at start")
	if code := s.Stop(syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("supervisor exit %d, want 0", code)
	}
	checkMastersStoppedCleanly(t, s.Output(), 1)
	for _, p := range []string{path, filepath.Join(s.Dir, ".web.sock.held")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s left behind after shutdown", p)
		}
	}
}

// TestUnixListenerStopDuringReload: the supervisor stops while a swap reload
// has a second generation running on the same unix:// socket (its workers
// hang while importing the new release, so the reload is still waiting):
// both masters are told to stop at about the same time, and neither may
// fail on its socket's name.
func TestUnixListenerStopDuringReload(t *testing.T) {
	s := startWeb(t, unixConfig)
	s.WaitState("web", control.StateRunning, 30*time.Second)
	testenv.WriteRelease(t, filepath.Join(s.Dir, "app"), testenv.Release{Version: "2", Variant: testenv.HangAtBoot})
	reloaded := make(chan string, 1)
	go func() {
		out, code := s.SupctlRun("reload", "web")
		reloaded <- fmt.Sprintf("exit %d: %s", code, out)
	}()
	// Gunicorn installs its signal handlers before it boots workers.
	testenv.WaitFor(t, 30*time.Second, "generation 2 booting workers", func() bool {
		return regexp.MustCompile(`web\[2\] stderr: .*Booting worker`).MatchString(s.Output())
	})
	if code := s.Stop(syscall.SIGTERM, 90*time.Second); code != 0 {
		t.Errorf("supervisor exit %d, want 0", code)
	}
	t.Logf("reload ended: %s", <-reloaded)
	out := s.Output()
	checkMastersStoppedCleanly(t, out, 1)
	if n := strings.Count(out, "Handling signal: term"); n < 2 {
		t.Errorf("%d masters handled TERM, want both", n)
	}
}
