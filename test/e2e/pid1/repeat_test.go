package pid1

import (
	"io"
	"net/http"
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

// TestPID1TwoTermsDrain: two TERMs 50 ms apart, as `make` forwarding a
// Ctrl-C or `kill -TERM -PGID` deliver them, are one stop: the request in a
// worker's hands is answered, Gunicorn drains, and the supervisor exits 0
// (not 143 with the apps killed).
func TestPID1TwoTermsDrain(t *testing.T) {
	s := startPID1(t, e2e.Options{Config: slowWebConfig, Setup: func(dir string) {
		writeTestApp(t, filepath.Join(dir, "app"))
	}})
	s.WaitState("web", control.StateRunning, 60*time.Second)
	addr := s.Addr("web")

	type answer struct {
		status int
		body   string
		err    error
	}
	answered := make(chan answer, 1)
	go func() {
		c := &http.Client{Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}, Timeout: 60 * time.Second}
		resp, err := c.Get("http://" + addr + "/?mark=inflight&ms=2000")
		if err != nil {
			answered <- answer{err: err}
			return
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		answered <- answer{status: resp.StatusCode, body: string(b), err: err}
	}()
	testenv.WaitFor(t, 30*time.Second, "the request in a worker's hands", func() bool {
		_, err := os.Stat(filepath.Join(s.Dir, "app", "inflight"))
		return err == nil
	})
	s.signal(syscall.SIGTERM)
	time.Sleep(50 * time.Millisecond) // the scenario: the second TERM 50 ms after the first
	s.signal(syscall.SIGTERM)

	code := s.Wait(90 * time.Second)
	a := <-answered
	if code != 0 {
		t.Errorf("supervisor exit status %d after two TERMs 50 ms apart, want 0 (a graceful stop)", code)
	}
	if a.err != nil || a.status != http.StatusOK || !strings.HasPrefix(a.body, "version=1") {
		t.Errorf("request in flight at the TERMs: status %d body %q err %v; want 200 version=1 (drained)", a.status, a.body, a.err)
	}
	out := s.Output()
	if !strings.Contains(out, "signal repeated within 1s: counted once") {
		t.Errorf("no 'signal repeated' line in the output")
	}
	if strings.Contains(out, "second stop signal") {
		t.Errorf("the repeated TERM was taken as a second stop signal")
	}
}
