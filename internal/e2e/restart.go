package e2e

import (
	"syscall"
	"testing"
	"time"
)

// Restart starts a new supervisor on prev's binary, configuration file,
// directory and mark (its processes count as prev's for the leftover
// check), as systemd's Restart= or an operator would after prev died; prev
// must have exited. Unless opts.NoWait, it waits until the new one accepts
// on the control socket. Of opts, Env, Wrap, ExtraFiles and NoWait apply.
// The test's clean-up stops it like Start's.
func Restart(t testing.TB, prev *Supervisor, opts Options) *Supervisor {
	t.Helper()
	if !prev.Exited() {
		t.Fatalf("e2e.Restart: supervisor %d still runs", prev.PID())
	}
	s := &Supervisor{t: t, Bin: prev.Bin, Supctl: prev.Supctl, Dir: prev.Dir, Config: prev.Config, Socket: prev.Socket, Mark: prev.Mark, venv: prev.venv}
	s.launch(opts)
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
		s.t.Fatalf("supervisor %d did not die within 10 s of SIGKILL", s.PID())
	}
}
