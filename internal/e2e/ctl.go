package e2e

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
)

// CtlResult is one finished supctl run.
type CtlResult struct {
	// Out is its combined output; Code its exit status (-1 when it did not
	// exit normally).
	Out  string
	Code int
	// Took is how long it ran.
	Took time.Duration
}

// Ctl runs supctl against this supervisor with args and times it.
func (s *Supervisor) Ctl(args ...string) CtlResult {
	start := time.Now()
	out, code := s.SupctlRun(args...)
	return CtlResult{Out: out, Code: code, Took: time.Since(start)}
}

// AsyncCtl is a supctl run in the background whose output can be watched.
type AsyncCtl struct {
	cmd  *exec.Cmd
	out  *testenv.SyncBuffer
	done chan struct{}
	res  CtlResult
}

// CtlAsync starts supctl with args and returns at once. The test's cleanup
// waits up to 90 s for it to end, then kills it.
func (s *Supervisor) CtlAsync(args ...string) *AsyncCtl {
	s.t.Helper()
	a := &AsyncCtl{out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	a.cmd = exec.Command(s.Supctl, append([]string{"-s", s.Socket}, args...)...)
	a.cmd.Stdout = a.out
	a.cmd.Stderr = a.out
	start := time.Now()
	if err := a.cmd.Start(); err != nil {
		s.t.Fatalf("e2e: start supctl %v: %v", args, err)
	}
	go func() {
		err := a.cmd.Wait()
		a.res = CtlResult{Out: a.out.String(), Code: a.cmd.ProcessState.ExitCode(), Took: time.Since(start)}
		if err != nil && a.res.Code == 0 {
			a.res.Code = -1
		}
		close(a.done)
	}()
	s.t.Cleanup(func() {
		select {
		case <-a.done:
		case <-time.After(90 * time.Second):
			_ = a.cmd.Process.Kill() // the test failed already; do not hang
			<-a.done
		}
	})
	return a
}

// Wait waits up to timeout for the run to end and returns its result; it
// fails the test when the run is still going then.
func (a *AsyncCtl) Wait(t *testing.T, timeout time.Duration) CtlResult {
	t.Helper()
	select {
	case <-a.done:
		return a.res
	case <-time.After(timeout):
		t.Fatalf("supctl %v still running after %s; output so far:\n%s", a.cmd.Args, timeout, a.out.String())
		return CtlResult{}
	}
}

// WaitOutput polls until the output contains s, failing the test after
// timeout.
func (a *AsyncCtl) WaitOutput(t *testing.T, timeout time.Duration, s string) {
	t.Helper()
	testenv.WaitFor(t, timeout, fmt.Sprintf("supctl output to contain %q", s), func() bool {
		return strings.Contains(a.out.String(), s)
	})
}
