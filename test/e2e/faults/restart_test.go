package faults

import (
	"net"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// killSupervisor kills the supervisor with -9 under load and starts it
// again on the same file: the new one must take over its predecessor's
// apps through run_dir (0 refused connections) and leave no Gunicorn
// outside its own tree 10 s after it answers. A supervisor without that
// recovery exits at start with "address already in use" (the orphans hold
// the port): the row then kills the orphans and skips.
func killSupervisor(t *testing.T) {
	// A fixed port, so that the supervisor started again binds the same
	// address as its orphans (port 0 would give it a fresh one).
	f := start(t, opts{Listen: "tcp://" + freeAddr(t)})
	old := f.App("web")
	l := f.load("web")
	f.Kill9()
	killed := time.Now()
	g := e2e.Restart(t, f.Supervisor, e2e.Options{NoWait: true})
	if !g.Ready(60 * time.Second) {
		res := l.Stop()
		out := g.Output()
		for _, pid := range testenv.Leftovers(f.Mark) {
			_ = syscall.Kill(pid, syscall.SIGKILL) // orphans of the killed supervisor, already reported below
		}
		if strings.Contains(out, "address already in use") {
			t.Skipf("needs recovery: the supervisor started again exited (%s); load meanwhile: %s", strings.TrimSpace(out), res)
		}
		t.Fatalf("the supervisor started again does not answer:\n%s", out)
	}
	f2 := &fx{Supervisor: g, t: t, apps: f.apps}
	after := f2.WaitState("web", control.StateRunning, 60*time.Second)
	t.Logf("started again: web running as master %d (was %d) %v after the kill", after.MasterPID, old.MasterPID, time.Since(killed).Round(time.Millisecond))
	more(t, l, 300)
	var outside []int
	ok := poll(10*time.Second, func() bool {
		procs := e2e.ProcTable()
		tree := e2e.Descendants(procs, g.Cmd.Process.Pid)
		outside = outside[:0]
		for _, pid := range e2e.MarkedGunicorns(procs, f.Mark) {
			if !slices.Contains(tree, pid) {
				outside = append(outside, pid)
			}
		}
		return len(outside) == 0
	})
	if !ok {
		t.Errorf("Gunicorn processes %v outside the new supervisor's tree 10 s after it answered", outside)
	}
	res := l.Stop()
	noFailures(t, res, 0)
	if res.Refused != 0 {
		t.Errorf("%d refused connections", res.Refused)
	}
	f2.assertTracked()
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago (it
// may be taken again before the supervisor binds it; the row then fails at
// start, loudly).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
