package proc

import (
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ExitInfo describes how a process ended.
type ExitInfo struct {
	// Code is the exit code, or -1 when killed by a signal.
	Code int `json:"code"`
	// Signal is the signal number that killed it, 0 if it exited.
	Signal int `json:"signal,omitempty"`
	// Time the exit was reaped.
	Time time.Time `json:"time"`
}

// ShellCode is the exit status a shell would report: the code, or 128+signal.
func (e ExitInfo) ShellCode() int {
	if e.Signal != 0 {
		return 128 + e.Signal
	}
	return e.Code
}

// String is "exit 3" or "signal 9 (SIGKILL)".
func (e ExitInfo) String() string {
	if e.Signal != 0 {
		return fmt.Sprintf("signal %d (%s)", e.Signal, unix.SignalName(syscall.Signal(e.Signal)))
	}
	return fmt.Sprintf("exit %d", e.Code)
}
