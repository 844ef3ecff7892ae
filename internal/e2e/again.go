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
	s.launch([]string{s.Bin, "-c", s.Config}, []string{testenv.MarkKey + "=" + s.Mark})
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

// launch starts argv with the test's environment plus env, its output into
// s's buffer, and a goroutine that waits for its exit and closes s.done. It
// fails the test when the process cannot start.
func (s *Supervisor) launch(argv, env []string) {
	s.t.Helper()
	s.Cmd = exec.Command(argv[0], argv[1:]...)
	s.Cmd.Env = append(os.Environ(), env...)
	s.Cmd.Stdout = s.out
	s.Cmd.Stderr = s.out
	if err := s.Cmd.Start(); err != nil {
		s.t.Fatalf("start supervisor %v: %v", argv, err)
	}
	go func() {
		s.exit = s.Cmd.Wait()
		close(s.done)
	}()
}
