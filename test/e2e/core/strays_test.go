package core

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// strayApp is a process app whose shell detaches a daemon into a session
// of its own (`setsid sleep STRAY`) and then becomes `sleep MAIN`: the
// daemon leaves the app's process tree and group. The two durations are
// unique per test, so the processes are counted by their arguments alone.
type strayApp struct {
	stray, main string
}

func newStrayApp() strayApp {
	n := 900000000 + time.Now().UnixNano()%90000000
	return strayApp{stray: strconv.FormatInt(n, 10), main: strconv.FormatInt(n+1, 10)}
}

// strayStartSettle returns the stray app's start_settle: the product default
// (1 s) with E2E_FULL=1, 200 ms without (see e2e.Runs). Every start,
// restart and reload of the app waits for it; what the tests check (the
// daemons of a generation end with it; a start cloned into a killed cgroup
// is SIGKILLed within a millisecond of its spawn) happens well within
// either.
func strayStartSettle() time.Duration {
	return time.Duration(e2e.Runs(int(time.Second), int(200*time.Millisecond)))
}

// config is the supervisor configuration running the app as "stray", its
// crash restarts at once (backoff 50 ms to 100 ms, no failed state), its
// starts counting after strayStartSettle().
func (a strayApp) config() string {
	return e2e.Config{}.String() + fmt.Sprintf(`
[app.stray]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "setsid /bin/sleep %s </dev/null >/dev/null 2>&1 & exec /bin/sleep %s"]
backoff_initial = "50ms"
backoff_max = "100ms"
crash_limit = 1000
stop_timeout = "5s"
start_settle = "%s"
`, a.stray, a.main, strayStartSettle())
}

// strays lists the live (not zombie) detached daemons of the app.
func (a strayApp) strays() []int {
	var out []int
	for _, p := range testenv.Procs() {
		if p.State == 'Z' || p.Comm != "sleep" {
			continue
		}
		if cmd, err := testenv.Cmdline(p.PID); err == nil && strings.HasSuffix(cmd, " "+a.stray) {
			out = append(out, p.PID)
		}
	}
	return out
}

// strayWatch samples the app's daemons in the background and keeps the
// largest count seen.
type strayWatch struct {
	mu   sync.Mutex
	max  int
	stop chan struct{}
	done chan struct{}
}

func (a strayApp) watch() *strayWatch {
	w := &strayWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			n := len(a.strays())
			w.mu.Lock()
			w.max = max(w.max, n)
			w.mu.Unlock()
			select {
			case <-w.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// end stops the sampling and returns the largest count seen.
func (w *strayWatch) end() int {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.max
}

// waitOneNewStray waits until exactly one daemon runs and it is not prev;
// it returns it.
func (a strayApp) waitOneNewStray(t *testing.T, prev int, what string) int {
	t.Helper()
	var now []int
	testenv.WaitFor(t, 30*time.Second, what+": exactly one daemon, a new one", func() bool {
		now = a.strays()
		return len(now) == 1 && now[0] != prev
	})
	return now[0]
}

// TestStopStartAfterStrayKill: 20 times (5 without E2E_FULL=1, see e2e.Runs), stop the app (its daemon is
// killed with its cgroup) and start it again: every start runs (none is
// SIGKILLed as it is cloned into a cgroup that was killed), with one new
// daemon, and nothing is counted as a crash.
func TestStopStartAfterStrayKill(t *testing.T) {
	t.Parallel() // waits on its app only (see TestMain)
	a := newStrayApp()
	s := e2e.Start(t, e2e.Options{Config: a.config()})
	s.WaitState("stray", control.StateRunning, 30*time.Second)
	prev := a.waitOneNewStray(t, 0, "first start")
	start := time.Now()
	n := e2e.Runs(20, 5)
	for i := range n {
		if r := s.Ctl("stop", "stray"); r.Code != 0 {
			t.Fatalf("stop %d: %s", i, r.Out)
		}
		if left := a.strays(); len(left) != 0 {
			t.Fatalf("stop %d answered with daemons %v alive", i, left)
		}
		if r := s.Ctl("start", "stray"); r.Code != 0 {
			t.Fatalf("start %d: %s", i, r.Out)
		}
		st := s.WaitState("stray", control.StateRunning, 30*time.Second)
		prev = a.waitOneNewStray(t, prev, fmt.Sprintf("start %d", i))
		if st.Restarts != 0 || !testenv.Poll(time.Second, func() bool { return syscall.Kill(st.MasterPID, 0) == nil }) {
			t.Fatalf("start %d: restarts %d, main %d alive: %v; last exit %v", i, st.Restarts, st.MasterPID, syscall.Kill(st.MasterPID, 0), st.LastExit)
		}
	}
	st := s.App("stray")
	if st.State != control.StateRunning || st.Restarts != 0 || (st.LastExit != nil && st.LastExit.Signal == int(syscall.SIGKILL)) {
		t.Fatalf("after %d stop+start: state %s restarts %d last exit %+v", n, st.State, st.Restarts, st.LastExit)
	}
	t.Logf("%d stop+start: %d of %d ran, 0 SIGKILLed at spawn, 0 restarts, one daemon after each (%s)", n, n, n, time.Since(start).Round(time.Millisecond))
}

// TestStraysEndWithTheirGeneration: 10 restarts, 10 restart-strategy
// reloads and 10 crash restarts (3 each without E2E_FULL=1) (SIGKILL to the main process) each end the
// old generation's daemon: once each has answered, exactly one daemon, a
// new one, runs; a sampler counts the daemons all along. With cgroups (a
// leaf per generation), and without (a read-only cgroup mount: the
// generation's mark in the daemon's environment).
func TestStraysEndWithTheirGeneration(t *testing.T) {
	t.Parallel() // waits on its app only (see TestMain)
	for _, tc := range []struct {
		name, log string
		wrap      []string
	}{
		{"cgroup", "", nil},
		{"subreaper", "apps run without cgroups", readOnlyCgroups},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := newStrayApp()
			s := e2e.Start(t, e2e.Options{Config: a.config(), Wrap: tc.wrap})
			s.WaitOutput(tc.log, 10*time.Second) // logged before the control socket answers, read from the pipe after
			a.replaceGenerations(t, s)
		})
	}
}

// replaceGenerations runs the restarts, reloads and crashes of
// TestStraysEndWithTheirGeneration against s.
func (a strayApp) replaceGenerations(t *testing.T, s *e2e.Supervisor) {
	s.WaitState("stray", control.StateRunning, 30*time.Second)
	prev := a.waitOneNewStray(t, 0, "first start")
	ops := []struct {
		name string
		do   func(t *testing.T)
	}{
		{"restart", func(t *testing.T) {
			if r := s.Ctl("restart", "stray"); r.Code != 0 {
				t.Fatalf("restart: %s", r.Out)
			}
		}},
		{"reload --strategy restart", func(t *testing.T) {
			if r := s.Ctl("reload", "stray", "--strategy", "restart"); r.Code != 0 {
				t.Fatalf("reload: %s", r.Out)
			}
		}},
		{"crash (SIGKILL to the main process)", func(t *testing.T) {
			before := s.App("stray")
			if err := syscall.Kill(before.MasterPID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 30*time.Second, "a new main process running", func() bool {
				now := s.App("stray")
				return now.State == control.StateRunning && now.MasterPID != before.MasterPID
			})
		}},
	}
	n := e2e.Runs(10, 3)
	for _, op := range ops {
		w := a.watch()
		start := time.Now()
		for i := range n {
			op.do(t)
			if now := a.strays(); len(now) > 1 {
				t.Fatalf("%s %d answered with daemons %v alive", op.name, i, now)
			}
			prev = a.waitOneNewStray(t, prev, fmt.Sprintf("%s %d", op.name, i))
		}
		most := w.end()
		t.Logf("%d x %s: one daemon after each, at most %d alive at any sample (%s)", n, op.name, most, time.Since(start).Round(time.Millisecond))
		if most > 1 {
			t.Errorf("%d x %s: %d daemons alive at once", n, op.name, most)
		}
	}
}

// startStrayWeb runs a Gunicorn app "web" of one worker whose worker
// detaches `setsid sleep STRAY` as it imports the app; extra is added to
// the app's table.
func (a strayApp) startStrayWeb(t *testing.T, extra string) *e2e.Supervisor {
	t.Helper()
	cfg := e2e.Config{Apps: []e2e.App{{Workers: 1, Extra: extra}}}.String()
	s := e2e.Start(t, e2e.Options{Config: cfg, Setup: func(dir string) {
		app := "import os\n" +
			"os.system('setsid /bin/sleep " + a.stray + " </dev/null >/dev/null 2>&1 &')\n" +
			"def app(environ, start_response):\n" +
			"    start_response('200 OK', [('Content-Type', 'text/plain')])\n" +
			"    return [b'ok']\n"
		if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "app", "app.py"), []byte(app), 0o644); err != nil {
			t.Fatal(err)
		}
	}})
	s.WaitState("web", control.StateRunning, 60*time.Second)
	return s
}

// TestSwapReloadEndsWorkerStrays: 10 swap reloads (3 without E2E_FULL=1; the default strategy) of
// the app of startStrayWeb: once each has answered, exactly one daemon
// runs, the new generation's (the old one's ended with its drain).
func TestSwapReloadEndsWorkerStrays(t *testing.T) {
	t.Parallel() // waits on its app only (see TestMain)
	a := newStrayApp()
	s := a.startStrayWeb(t, "")
	prev := a.waitOneNewStray(t, 0, "first start")
	w := a.watch()
	start := time.Now()
	n := e2e.Runs(10, 3)
	for i := range n {
		if r := s.Ctl("reload", "web"); r.Code != 0 {
			t.Fatalf("reload %d: %s", i, r.Out)
		}
		if now := a.strays(); len(now) > 1 {
			t.Fatalf("swap reload %d answered with daemons %v alive", i, now)
		}
		prev = a.waitOneNewStray(t, prev, fmt.Sprintf("swap reload %d", i))
	}
	// Two generations overlap during a swap, and so do their daemons.
	t.Logf("%d x swap reload: one daemon after each, at most %d alive at any sample (%s)", n, w.end(), time.Since(start).Round(time.Millisecond))
}

// TestUSR2ChainKeepsItsStrays: a USR2 master shares the cgroup leaf of the
// master that forked it, so the end of the old master kills neither the new
// one nor the daemons in the leaf: after 3 usr2 reloads of the app of
// startStrayWeb it still answers, and the chain's 4 daemons run. A restart
// ends the chain: exactly one daemon then.
func TestUSR2ChainKeepsItsStrays(t *testing.T) {
	t.Parallel() // waits on its app only (see TestMain)
	a := newStrayApp()
	s := a.startStrayWeb(t, "[app.web.reload]\nstrategy = \"usr2\"\n")
	a.waitOneNewStray(t, 0, "first start")
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	for i := range 3 {
		before := s.App("web")
		if r := s.Ctl("reload", "web"); r.Code != 0 || !strings.Contains(r.Out, "usr2") {
			t.Fatalf("usr2 reload %d: %s", i, r.Out)
		}
		after := s.WaitState("web", control.StateRunning, 30*time.Second)
		if after.MasterPID == before.MasterPID || syscall.Kill(after.MasterPID, 0) != nil {
			t.Fatalf("usr2 reload %d: master %d -> %d (alive: %v)", i, before.MasterPID, after.MasterPID, syscall.Kill(after.MasterPID, 0))
		}
		resp, err := c.Get("http://" + s.Addr("web") + "/")
		if err != nil {
			t.Fatalf("after usr2 reload %d: %v", i, err)
		}
		body, _ := io.ReadAll(resp.Body) // the status is what is checked
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("after usr2 reload %d: %d %s", i, resp.StatusCode, body)
		}
		testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("%d daemons after usr2 reload %d", i+2, i), func() bool { return len(a.strays()) == i+2 })
	}
	if r := s.Ctl("restart", "web"); r.Code != 0 {
		t.Fatalf("restart: %s", r.Out)
	}
	if now := a.strays(); len(now) > 1 {
		t.Fatalf("restart answered with daemons %v alive", now)
	}
	a.waitOneNewStray(t, 0, "restart after the usr2 chain")
	t.Logf("3 usr2 reloads: the app answered after each, 2, 3, 4 daemons; after a restart: 1")
}

// TestStraysEndAfterSelfUpgrade: a generation handed over by a self-upgrade
// (SIGUSR2, same binary) keeps its leaf cgroup: its daemon ends when it
// crashes after the upgrade, and exactly one daemon, the new one's, runs.
func TestStraysEndAfterSelfUpgrade(t *testing.T) {
	t.Parallel() // waits on its app only (see TestMain)
	a := newStrayApp()
	s := e2e.Start(t, e2e.Options{Config: a.config()})
	before := s.WaitState("stray", control.StateRunning, 30*time.Second)
	prev := a.waitOneNewStray(t, 0, "first start")
	if err := syscall.Kill(s.PID(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "upgrade by SIGUSR2", func() bool {
		if s.Exited() {
			t.Fatalf("supervisor exited (status %d)", s.ExitStatus())
		}
		st, err := control.NewClient(s.Socket).Status(t.Context(), "")
		return err == nil && st.Supervisor.Upgrades == 1
	})
	if now := s.App("stray"); now.MasterPID != before.MasterPID {
		t.Fatalf("main process %d -> %d across the upgrade, want it handed over", before.MasterPID, now.MasterPID)
	}
	if err := syscall.Kill(before.MasterPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if !testenv.Poll(30*time.Second, func() bool {
		now := s.App("stray")
		return now.State == control.StateRunning && now.MasterPID != before.MasterPID
	}) {
		t.Fatalf("no new main process after the crash: %+v", s.App("stray"))
	}
	a.waitOneNewStray(t, prev, "crash after the upgrade")
	t.Logf("self-upgrade, then crash of the handed-over generation: its daemon %d ended, one new daemon", prev)
}
