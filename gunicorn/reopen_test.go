package gunicorn

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"
)

// TestReopenLogs: the master gets USR1 (a process without Gunicorn's
// handler dies of it), and a master already gone is no error.
func TestReopenLogs(t *testing.T) {
	c := exec.Command("sleep", "30")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if err := ReopenLogs(c.Process.Pid); err != nil {
		t.Fatalf("ReopenLogs(running) = %v", err)
	}
	var ee *exec.ExitError
	err := c.Wait()
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGUSR1 {
		t.Fatalf("sleep ended with %v, want killed by SIGUSR1", err)
	}
	if err := ReopenLogs(c.Process.Pid); err != nil {
		t.Errorf("ReopenLogs(gone) = %v, want nil", err)
	}
}
