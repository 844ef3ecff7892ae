package sdnotify

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Environment variables of socket activation (sd_listen_fds(3)).
const (
	envListenPID     = "LISTEN_PID"
	envListenFDs     = "LISTEN_FDS"
	envListenFDNames = "LISTEN_FDNAMES"

	// listenFDsStart is SD_LISTEN_FDS_START: the first passed fd.
	listenFDsStart = 3
	// unknownName is what systemd reports for an fd without a name.
	unknownName = "unknown"
)

// Inherited is one socket passed by systemd socket activation.
type Inherited struct {
	// Name is the socket unit's FileDescriptorName= (by default the socket
	// unit's name), or "unknown" when systemd passed no name for it.
	Name string
	// FD is the descriptor number in this process (3, 4, ...). It is marked
	// close-on-exec; the caller owns it (typically os.NewFile(uintptr(FD), Name)).
	FD int
}

// ListenFDs returns the sockets systemd passed to this process, in order
// (position 0 is fd 3). It returns none, and no error, when LISTEN_PID is unset
// or names another process (the variables were inherited, not meant for us),
// or when LISTEN_FDS is unset or 0.
//
// Names come from LISTEN_FDNAMES (colon-separated); an fd without a name (the
// variable absent, shorter than LISTEN_FDS, or an empty entry) is named
// "unknown", as systemd does. Every returned fd is marked close-on-exec so
// that children get a socket only when it is handed to them on purpose.
//
// When unsetEnv is true, LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES are
// removed from the process environment whatever the outcome.
//
// The error reports a malformed variable (naming it and its value), more
// names than fds, or a passed fd that is not open.
func ListenFDs(unsetEnv bool) ([]Inherited, error) {
	fds, err := listenFDs(os.Getenv, os.Getpid())
	if unsetEnv {
		if uerr := unsetAll(envListenPID, envListenFDs, envListenFDNames); uerr != nil {
			return nil, errors.Join(err, uerr)
		}
	}
	if err != nil {
		return nil, err
	}
	return fds, nil
}

// listenFDs parses the environment (parseListenEnv) and marks each fd
// close-on-exec, which also proves that it is open.
func listenFDs(env func(string) string, pid int) ([]Inherited, error) {
	fds, err := parseListenEnv(env, pid)
	if err != nil {
		return nil, err
	}
	for _, in := range fds {
		flags, err := unix.FcntlInt(uintptr(in.FD), unix.F_GETFD, 0)
		if err != nil {
			return nil, fmt.Errorf("sdnotify: %s=%s: fd %d (%s): %w", envListenFDs, env(envListenFDs), in.FD, in.Name, err)
		}
		if flags&unix.FD_CLOEXEC == 0 {
			if _, err := unix.FcntlInt(uintptr(in.FD), unix.F_SETFD, flags|unix.FD_CLOEXEC); err != nil {
				return nil, fmt.Errorf("sdnotify: set close-on-exec on fd %d (%s): %w", in.FD, in.Name, err)
			}
		}
	}
	return fds, nil
}

// parseListenEnv is the pure part of ListenFDs: it reads the LISTEN_*
// variables through env for the process pid, touching no descriptor.
func parseListenEnv(env func(string) string, pid int) ([]Inherited, error) {
	rawPID := env(envListenPID)
	if rawPID == "" {
		return nil, nil
	}
	p, err := strconv.Atoi(rawPID)
	if err != nil || p <= 0 {
		return nil, fmt.Errorf("sdnotify: %s=%q: not a process id", envListenPID, rawPID)
	}
	if p != pid {
		return nil, nil
	}
	rawN := env(envListenFDs)
	if rawN == "" {
		return nil, nil
	}
	n, err := strconv.Atoi(rawN)
	if err != nil || n < 0 || n > math.MaxInt32-listenFDsStart {
		return nil, fmt.Errorf("sdnotify: %s=%q: not a count of descriptors", envListenFDs, rawN)
	}
	if n == 0 {
		return nil, nil
	}
	var names []string
	if rawNames := env(envListenFDNames); rawNames != "" {
		names = strings.Split(rawNames, ":")
		if len(names) > n {
			return nil, fmt.Errorf("sdnotify: %s=%q names %d sockets but %s=%d", envListenFDNames, rawNames, len(names), envListenFDs, n)
		}
	}
	fds := make([]Inherited, n)
	for i := range fds {
		name := unknownName
		if i < len(names) && names[i] != "" {
			name = names[i]
		}
		fds[i] = Inherited{Name: name, FD: listenFDsStart + i}
	}
	return fds, nil
}

// Lookup finds the socket a listener refers to: ref is a name given by
// FileDescriptorName= or, when no socket has that name, a decimal 0-based
// position among fds (0 is fd 3). A name passed more than once (one socket
// unit with several ListenStream= lines) is ambiguous and reported as an
// error: refer to such sockets by position. The error for a missing ref
// lists what systemd did pass, so that a typo in the configuration is obvious.
func Lookup(fds []Inherited, ref string) (Inherited, error) {
	if ref == "" {
		return Inherited{}, fmt.Errorf("sdnotify: empty socket reference (passed: %s)", describe(fds))
	}
	var matches []Inherited
	for _, in := range fds {
		if in.Name == ref {
			matches = append(matches, in)
		}
	}
	switch len(matches) {
	case 1:
		return matches[0], nil
	case 0:
	default:
		return Inherited{}, fmt.Errorf("sdnotify: socket name %q is ambiguous, refer to it by position (passed: %s)", ref, describe(fds))
	}
	if pos, err := strconv.Atoi(ref); err == nil && isDigits(ref) {
		if pos < len(fds) {
			return fds[pos], nil
		}
		return Inherited{}, fmt.Errorf("sdnotify: no socket at position %s, systemd passed %d (%s)", ref, len(fds), describe(fds))
	}
	return Inherited{}, fmt.Errorf("sdnotify: no socket named %q (passed: %s)", ref, describe(fds))
}

func isDigits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// describe lists fds as "0=web (fd 3), 1=unknown (fd 4)" for error messages.
func describe(fds []Inherited) string {
	if len(fds) == 0 {
		return "none; is the .socket unit's Service= this service, and was it started first?"
	}
	parts := make([]string, len(fds))
	for i, in := range fds {
		parts[i] = fmt.Sprintf("%d=%s (fd %d)", i, in.Name, in.FD)
	}
	return strings.Join(parts, ", ")
}
