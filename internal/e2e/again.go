package e2e

import (
	"context"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
)

// StartAgain starts a new supervisor process on prev's configuration file,
// directory and control socket, with prev's mark (so the leftover check of
// prev's cleanup covers the processes of both), as systemd's Restart= or an
// operator would after prev died. It does not wait for anything; Ready waits
// for the control API. The test's cleanup stops it like Start's.
func StartAgain(t testing.TB, prev *Supervisor) *Supervisor {
	t.Helper()
	s := &Supervisor{t: t, Bin: prev.Bin, Supctl: prev.Supctl, Dir: prev.Dir, Config: prev.Config, Socket: prev.Socket,
		Mark: prev.Mark, out: &syncBuffer{}, done: make(chan struct{})}
	s.Cmd = exec.Command(s.Bin, "-c", s.Config)
	s.Cmd.Env = append(os.Environ(), testenv.MarkKey+"="+s.Mark)
	s.Cmd.Stdout = s.out
	s.Cmd.Stderr = s.out
	if err := s.Cmd.Start(); err != nil {
		t.Fatalf("start supervisor again: %v", err)
	}
	go func() {
		s.exit = s.Cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Stop(syscall.SIGTERM, 60*time.Second)
		if t.Failed() {
			t.Logf("restarted supervisor output:\n%s", s.Output())
		}
	})
	return s
}

// Ready waits up to timeout until the supervisor answers a status request
// on its control socket; it reports false when the supervisor exited first
// or did not answer in time.
func (s *Supervisor) Ready(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if s.Exited() {
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := s.Client().Status(ctx, "")
		cancel()
		if err == nil {
			return true
		}
		select {
		case <-s.done:
			return false
		case <-time.After(50 * time.Millisecond): // polling interval
		}
	}
	return false
}
