// Package sdnotify speaks systemd's service manager protocols: readiness and
// status notification (sd_notify(3), NOTIFY_SOCKET), the service watchdog
// (WATCHDOG_USEC, WATCHDOG_PID) and socket activation (sd_listen_fds(3),
// LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES).
//
// Everything here is a no-op when the process was not started by systemd, so
// callers need not test for systemd themselves: FromEnv returns a nil
// *Notifier whose methods do nothing, and ListenFDs returns no sockets.
//
// go-systemd's daemon package supplies the state words (READY=1, ...) and
// reads the watchdog variables (SdWatchdogEnabled). Three parts are kept here
// because go-systemd does not fit them:
//   - Sending: daemon.SdNotify reads NOTIFY_SOCKET from the environment on
//     every call, but the supervisor removes it at start-up (a Gunicorn
//     master that inherited it would send its own READY=1) and, after an
//     in-place re-exec, has it only from the hand-over state (Restore). A
//     Notifier captures the socket once and sends to it, "@name" as an
//     abstract socket, and its errors name the state and the socket.
//   - MONOTONIC_USEC: daemon.SdNotifyMonotonicUsec returns "" when the clock
//     cannot be read; Reloading reports that error instead of sending a
//     RELOADING=1 that systemd's Type=notify-reload rejects.
//   - Socket activation: go-systemd's activation.Files drops malformed
//     variables and closed descriptors silently and names an unnamed fd
//     "LISTEN_FD_<n>"; ListenFDs reports both (naming the variable or fd) and
//     uses systemd's own "unknown", which `systemd:NAME` listeners match.
package sdnotify

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"golang.org/x/sys/unix"
)

// Environment variables read (and optionally removed) by FromEnv.
const (
	envNotifySocket = "NOTIFY_SOCKET"
	envWatchdogUsec = "WATCHDOG_USEC"
	envWatchdogPID  = "WATCHDOG_PID"
)

// Notifier sends state changes to the service manager's notification socket.
// A nil *Notifier is valid: every method on it does nothing and returns nil
// (the process was not started by systemd, or not as Type=notify).
// A Notifier is safe for concurrent use: each message uses its own socket.
type Notifier struct {
	// socket is NOTIFY_SOCKET as given: an absolute path, or "@name" for an
	// abstract socket (golang.org/x/sys/unix maps a leading '@' to NUL).
	socket string
	// watchdog is the ping interval captured from the environment at FromEnv;
	// watchdogOK is false when systemd set no watchdog for this process.
	watchdog   time.Duration
	watchdogOK bool
}

// FromEnv returns a Notifier for the socket named by NOTIFY_SOCKET, or a nil
// *Notifier and nil error when NOTIFY_SOCKET is unset or empty. It captures
// the watchdog interval (see WatchdogInterval) before anything is removed.
//
// When unsetEnv is true, NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID are
// removed from the process environment whatever the outcome, so that no
// child (a Gunicorn master, which would send its own READY=1) inherits them.
//
// The error reports a NOTIFY_SOCKET that is neither an absolute path nor an
// abstract "@name" (systemd's vsock: form is not supported).
func FromEnv(unsetEnv bool) (*Notifier, error) {
	socket := os.Getenv(envNotifySocket)
	interval, ok := watchdogFromEnv()
	if unsetEnv {
		if err := unsetAll(envNotifySocket, envWatchdogUsec, envWatchdogPID); err != nil {
			return nil, err
		}
	}
	if socket == "" {
		return nil, nil
	}
	if !strings.HasPrefix(socket, "/") && !strings.HasPrefix(socket, "@") {
		return nil, fmt.Errorf("sdnotify: %s=%q: want an absolute path or an abstract @name", envNotifySocket, socket)
	}
	if len(socket) < 2 {
		return nil, fmt.Errorf("sdnotify: %s=%q: empty socket name", envNotifySocket, socket)
	}
	return &Notifier{socket: socket, watchdog: interval, watchdogOK: ok}, nil
}

// Socket returns NOTIFY_SOCKET as read by FromEnv ("" for a nil Notifier).
func (n *Notifier) Socket() string {
	if n == nil {
		return ""
	}
	return n.socket
}

// WatchdogInterval returns how often Watchdog should be called (half of
// WATCHDOG_USEC) as captured by FromEnv, and false when systemd asked for no
// watchdog pings (always false on a nil Notifier: pings could not be sent).
func (n *Notifier) WatchdogInterval() (time.Duration, bool) {
	if n == nil || !n.watchdogOK {
		return 0, false
	}
	return n.watchdog, true
}

// Notify sends state, newline-separated VARIABLE=value assignments as in
// sd_notify(3), to the service manager in one datagram. It returns nil on a
// nil Notifier, and an error naming the state and socket when the datagram
// cannot be sent (the manager went away, or the socket path is wrong).
func (n *Notifier) Notify(state string) error {
	if n == nil {
		return nil
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("sdnotify: send %q to %s: socket: %w", state, n.socket, err)
	}
	sendErr := unix.Sendto(fd, []byte(state), unix.MSG_NOSIGNAL, &unix.SockaddrUnix{Name: n.socket})
	closeErr := unix.Close(fd)
	if sendErr != nil {
		return fmt.Errorf("sdnotify: send %q to %s: %w", state, n.socket, sendErr)
	}
	if closeErr != nil {
		return fmt.Errorf("sdnotify: send %q to %s: close: %w", state, n.socket, closeErr)
	}
	return nil
}

// Ready tells the manager that start-up (or a reload announced by Reloading)
// has finished: "READY=1", followed by "\nSTATUS=<status>" when status is not
// empty. Newlines in status are replaced by spaces so that it cannot inject
// further assignments.
func (n *Notifier) Ready(status string) error {
	if status == "" {
		return n.Notify(daemon.SdNotifyReady)
	}
	return n.Notify(daemon.SdNotifyReady + "\nSTATUS=" + oneLine(status))
}

// Reloading tells the manager that a configuration reload has begun:
// "RELOADING=1\nMONOTONIC_USEC=<CLOCK_MONOTONIC in µs>", the form systemd ≥ 253
// requires for Type=notify-reload and older versions accept. Send Ready when
// the reload has finished. The error reports a clock read or send failure.
func (n *Notifier) Reloading() error {
	if n == nil {
		return nil
	}
	usec, err := monotonicUsec()
	if err != nil {
		return err
	}
	return n.Notify(daemon.SdNotifyReloading + "\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10))
}

// Stopping tells the manager that a graceful stop has begun ("STOPPING=1").
func (n *Notifier) Stopping() error { return n.Notify(daemon.SdNotifyStopping) }

// Status sets the free-form status line shown by systemctl status
// ("STATUS=<s>", newlines replaced by spaces).
func (n *Notifier) Status(s string) error { return n.Notify("STATUS=" + oneLine(s)) }

// Watchdog pings the service watchdog ("WATCHDOG=1"). Call it every
// WatchdogInterval while the process is healthy.
func (n *Notifier) Watchdog() error { return n.Notify(daemon.SdNotifyWatchdog) }

// watchdogFromEnv reads WATCHDOG_USEC and WATCHDOG_PID and returns the
// interval at which to ping: half the watchdog timeout, as
// sd_watchdog_enabled(3) recommends. It returns false when no watchdog
// applies to this process: WATCHDOG_USEC unset, zero, not a decimal number,
// or too large; or WATCHDOG_PID set but not equal to os.Getpid() (the
// variables were inherited from a parent they were meant for).
func watchdogFromEnv() (time.Duration, bool) {
	timeout, err := daemon.SdWatchdogEnabled(false)
	if err != nil || timeout <= 0 {
		// A malformed variable was not set by systemd for this process:
		// systemd then expects no pings, so none are sent.
		return 0, false
	}
	return timeout / 2, true
}

func monotonicUsec() (int64, error) {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0, fmt.Errorf("sdnotify: read CLOCK_MONOTONIC: %w", err)
	}
	return ts.Nano() / int64(time.Microsecond), nil
}

func oneLine(s string) string {
	return strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ").Replace(s)
}

func unsetAll(names ...string) error {
	var errs []error
	for _, name := range names {
		if err := os.Unsetenv(name); err != nil {
			errs = append(errs, fmt.Errorf("sdnotify: unset %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}
