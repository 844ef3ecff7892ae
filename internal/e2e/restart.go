package e2e

import (
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
)

// Restart starts a new supervisor on prev's configuration file, directory
// and mark (its processes count as prev's for the leftover check), as
// systemd's Restart= or an operator would after prev died; prev must have
// exited. It waits until the new one answers on the control socket (a dead
// predecessor leaves its socket file behind). The test's clean-up stops it
// like Start's.
func Restart(t testing.TB, prev *Supervisor, opts Options) *Supervisor {
	t.Helper()
	if !prev.Exited() {
		t.Fatalf("e2e.Restart: supervisor %d still runs", prev.Cmd.Process.Pid)
	}
	s := &Supervisor{t: t, Bin: prev.Bin, Supctl: prev.Supctl, Dir: prev.Dir, Config: prev.Config, Socket: prev.Socket, Mark: prev.Mark}
	s.launch(opts, testenv.MarkKey+"="+prev.Mark)
	if opts.NoWait {
		return s
	}
	testenv.WaitFor(t, 30*time.Second, "control socket "+s.Socket+" answering", func() bool {
		if s.Exited() {
			t.Fatalf("restarted supervisor exited early (%v):\n%s", s.exit, s.Output())
		}
		_, err := s.Client().Status(t.Context(), "")
		return err == nil
	})
	return s
}

// Kill9 kills the supervisor with SIGKILL (its apps are orphaned) and waits
// up to 10 s for its exit.
func (s *Supervisor) Kill9() {
	s.t.Helper()
	if err := s.Cmd.Process.Signal(syscall.SIGKILL); err != nil {
		s.t.Fatalf("kill -9 supervisor: %v", err)
	}
	if s.Wait(10*time.Second) == -1 {
		s.t.Fatalf("supervisor %d did not die within 10 s of SIGKILL", s.Cmd.Process.Pid)
	}
}
