package e2e

import (
	"bytes"
	"os/exec"
	"strings"
	"time"
)

// Async is a supctl run in the background whose output can be watched while
// it runs (a reload's progress lines).
type Async struct {
	Cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
	code int
	took time.Duration
}

// SupctlAsync starts supctl with args against s. Wait, or Kill, must be
// called before the test ends.
func (s *Supervisor) SupctlAsync(args ...string) (*Async, error) {
	a := &Async{out: &syncBuffer{b: bytes.Buffer{}}, done: make(chan struct{})}
	a.Cmd = exec.Command(s.Supctl, append([]string{"-s", s.Socket}, args...)...)
	a.Cmd.Stdout = a.out
	a.Cmd.Stderr = a.out
	start := time.Now()
	if err := a.Cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		err := a.Cmd.Wait()
		a.code, a.took = exitStatus(err), time.Since(start)
		close(a.done)
	}()
	return a, nil
}

// Output is what supctl printed so far.
func (a *Async) Output() string { return a.out.String() }

// Contains reports whether the output so far contains s.
func (a *Async) Contains(s string) bool { return strings.Contains(a.out.String(), s) }

// Done is closed when supctl has exited.
func (a *Async) Done() <-chan struct{} { return a.done }

// Wait waits up to timeout for supctl to exit and returns its exit status
// and how long it ran; after timeout it kills supctl and returns -1.
func (a *Async) Wait(timeout time.Duration) (code int, took time.Duration) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-a.done:
	case <-t.C:
		_ = a.Cmd.Process.Kill() // bounded wait: a supctl still running after timeout is killed
		<-a.done
		return -1, timeout
	}
	return a.code, a.took
}
