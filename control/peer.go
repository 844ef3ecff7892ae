package control

import (
	"context"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// ServerPID returns the pid of the process serving the control socket as
// this process's PID namespace numbers it (0 when the server is outside
// it), from the socket's peer credentials (SO_PEERCRED). A connection is
// opened and closed without a request.
func (c *Client) ServerPID(ctx context.Context) (int, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Path)
	if err != nil {
		return 0, &ConnectError{Path: c.Path, Err: err}
	}
	defer conn.Close()
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return 0, &ConnectError{Path: c.Path, Err: net.UnknownNetworkError("not a Unix socket")}
	}
	cred, err := peerCred(uc)
	if err != nil {
		return 0, &ConnectError{Path: c.Path, Err: err}
	}
	return int(cred.Pid), nil
}

// PidWatch watches one process through a pidfd: Exited says whether it has
// exited, across execs of its image (the pid stays the process's).
type PidWatch struct{ fd int }

// WatchPID opens a pidfd for pid; an error when pid is 0 or gone.
func WatchPID(pid int) (*PidWatch, error) {
	if pid <= 0 {
		return nil, unix.ESRCH
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, err
	}
	return &PidWatch{fd: fd}, nil
}

// NewPidWatch watches the process behind pidfd (a pidfd inherited, say),
// which Close closes.
func NewPidWatch(pidfd int) *PidWatch { return &PidWatch{fd: pidfd} }

// Exited reports, without waiting, whether the process has exited.
func (w *PidWatch) Exited() bool { return w.Wait(0) }

// Wait waits up to d for the process to exit and reports whether it has
// (false also when a signal interrupts the wait).
func (w *PidWatch) Wait(d time.Duration) bool {
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, int(d.Milliseconds()))
	return err == nil && n > 0
}

// Close releases the pidfd.
func (w *PidWatch) Close() error { return unix.Close(w.fd) }
