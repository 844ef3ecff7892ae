package core

import (
	"errors"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// stopRefuseConfig is web on a TCP and a Unix listener.
var stopRefuseConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{
	{Listen: []string{"tcp://127.0.0.1:0", "unix://@DIR@/web.sock"}},
}}.String()

// refusedWithin dials network addr until the connect fails with one of
// want, and returns how long that took; it fails the test when a connect
// still succeeds (a held socket takes it into its backlog) after limit.
func refusedWithin(t *testing.T, network, addr string, limit time.Duration, want ...error) time.Duration {
	t.Helper()
	start := time.Now()
	var last error
	ok := testenv.Poll(limit, func() bool {
		c, err := net.DialTimeout(network, addr, limit)
		if err == nil {
			_ = c.Close() // only the connect matters
		}
		last = err
		for _, w := range want {
			if errors.Is(err, w) {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("%s %s: connect still gives %v after %s, want %v", network, addr, last, limit, want)
	}
	return time.Since(start)
}

// TestStopRefusesConnections: a restart under load keeps the sockets held
// (no failed request); after `supctl stop web` a TCP connect is refused and
// a Unix one fails within 1 s, status says the listeners are closed; a
// self-upgrade then succeeds, and `supctl start web` serves again on the
// same port and path.
func TestStopRefusesConnections(t *testing.T) {
	s := startWeb(t, stopRefuseConfig)
	s.WaitState("web", control.StateRunning, 30*time.Second)
	addr, path := s.Addr("web"), filepath.Join(s.Dir, "web.sock")

	load := e2e.StartLoad("tcp", addr, "/", 8)
	waitServed(t, load, 50)
	if r := s.Ctl("restart", "web"); r.Code != 0 {
		load.Stop()
		t.Fatalf("restart: exit %d: %s", r.Code, r.Out)
	}
	before := load.Snapshot().Requests
	waitServed(t, load, before+50)
	res := load.Stop()
	t.Logf("restart under load: %s", res)
	if res.Failed() != 0 {
		t.Errorf("restart: %d of %d requests failed: %v", res.Failed(), res.Requests, res.Errors)
	}

	began := time.Now()
	if r := s.Ctl("stop", "web"); r.Code != 0 {
		t.Fatalf("stop: exit %d: %s", r.Code, r.Out)
	}
	stopped := time.Since(began)
	tcp := refusedWithin(t, "tcp", addr, time.Second, syscall.ECONNREFUSED)
	uds := refusedWithin(t, "unix", path, time.Second, syscall.ECONNREFUSED, syscall.ENOENT)
	t.Logf("stop took %s; then TCP refused after %s, Unix after %s", stopped, tcp, uds)
	for _, l := range s.App("web").Listeners {
		if !l.Closed {
			t.Errorf("status of stopped web: listener %s not closed", l.Address)
		}
	}
	if out, _ := s.SupctlRun("status"); !strings.Contains(out, "(closed)") {
		t.Errorf("supctl status does not say the listeners are closed:\n%s", out)
	}

	// A self-upgrade takes a socket per listener: the stopped app's are
	// bound again for it.
	if err := syscall.Kill(s.PID(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "self-upgrade by SIGUSR2", func() bool {
		if s.Exited() {
			t.Fatalf("supervisor exited (status %d):\n%s", s.ExitStatus(), s.Output())
		}
		st, err := control.NewClient(s.Socket).Status(t.Context(), "")
		return err == nil && st.Supervisor.Upgrades == 1
	})

	if r := s.Ctl("start", "web"); r.Code != 0 {
		t.Fatalf("start: exit %d: %s", r.Code, r.Out)
	}
	app := s.WaitState("web", control.StateRunning, 30*time.Second)
	if got := app.Listeners[0].Bound; got != addr || app.Listeners[0].Closed {
		t.Errorf("after start: listener bound at %s (closed %v), want %s", got, app.Listeners[0].Closed, addr)
	}
	if code, body, err := testenv.Get(addr, "/"); err != nil || code != 200 || body != "version=1\n" {
		t.Errorf("after start: GET %s: %d %q %v", addr, code, body, err)
	}
	assertUnixServes(t, path, "after start")
}

// waitServed waits until load has sent n requests.
func waitServed(t *testing.T, load *e2e.Loader, n int) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, "load requests", func() bool { return load.Snapshot().Requests >= n })
}
