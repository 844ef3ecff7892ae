// Package sockfile manages Unix socket files: it replaces a stale one
// (nobody accepts there), refuses a live one, and binds under a tight umask
// with the mode and owner asked for. It imports nothing of the supervisor,
// so the control API can use it without linking the configuration.
package sockfile

import (
	"errors"
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"
)

// ErrInUse is returned for a Unix socket path where something still accepts.
var ErrInUse = errors.New("in use by another process")

// RemoveStale removes a Unix socket file nobody accepts on. It returns nil
// when path does not exist or was removed, an error wrapping ErrInUse when
// something accepts there, and an error when path is not a socket.
func RemoveStale(path string) error {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", path, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	c, err := net.Dial("unix", path)
	if err == nil {
		_ = c.Close() // a probe connection: nothing was sent
		return fmt.Errorf("%s: %w", path, ErrInUse)
	}
	if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

// Bind binds fd (an AF_UNIX socket) at path after RemoveStale. The file
// is created under umask 0177, so it is never more open than asked, then
// gets mode and, where uid or gid is not -1, that owner or group. On error
// the file it created is removed; fd stays open (the caller's).
func Bind(fd int, path string, mode os.FileMode, uid, gid int) error {
	if len(path) > 107 {
		return fmt.Errorf("%s is longer than a Unix socket path may be (107 bytes)", path)
	}
	if err := RemoveStale(path); err != nil {
		return err
	}
	old := unix.Umask(0o177)
	err := unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err != nil {
		return fmt.Errorf("bind %s: %w", path, err)
	}
	if err := chmodSocket(path, mode); err != nil {
		_ = unix.Unlink(path) // just created by us, or a link put in its place
		return err
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Lchown(path, uid, gid); err != nil {
			_ = unix.Unlink(path) // just created by us
			return fmt.Errorf("chown %s: %w", path, err)
		}
	}
	return nil
}

// Listen listens on a Unix socket at path for the supervisor's own
// use (the control API): a stale socket file there is replaced (ErrInUse if
// something accepts on it), the file gets mode and, when gid is not -1, that
// group, and closing the listener removes it.
func Listen(path string, mode os.FileMode, gid int) (*net.UnixListener, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := Bind(fd, path, mode, -1, gid); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if err := unix.Listen(fd, unix.SOMAXCONN); err != nil {
		unix.Close(fd)
		_ = unix.Unlink(path) // just created by us
		return nil, fmt.Errorf("listen %s: %w", path, err)
	}
	f := os.NewFile(uintptr(fd), path)
	ln, err := net.FileListener(f)
	cerr := f.Close() // FileListener holds its own duplicate
	if err != nil {
		_ = unix.Unlink(path) // just created by us
		return nil, errors.Join(fmt.Errorf("listen %s: %w", path, err), cerr)
	}
	ul, ok := ln.(*net.UnixListener)
	if !ok {
		_ = unix.Unlink(path) // just created by us
		return nil, errors.Join(fmt.Errorf("listen %s: not a Unix listener", path), ln.Close())
	}
	ul.SetUnlinkOnClose(true)
	if cerr != nil {
		return nil, errors.Join(fmt.Errorf("listen %s: close the original descriptor: %w", path, cerr), ul.Close())
	}
	return ul, nil
}

// chmodSocket gives the socket file at path mode without following a link:
// whoever can write its directory could replace the socket with a link
// between bind and chmod, and chmod by path would change the link's target.
// The name is opened O_PATH|O_NOFOLLOW, must be a socket, and is changed
// through its descriptor (/proc/self/fd names the inode itself).
func chmodSocket(path string, mode os.FileMode) error {
	fd, err := unix.Open(path, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("chmod %s %o: %w", path, mode.Perm(), err)
	}
	defer func() { _ = unix.Close(fd) }() // an O_PATH descriptor: nothing to flush
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("chmod %s %o: %w", path, mode.Perm(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return fmt.Errorf("chmod %s: no longer a socket after bind (mode %o): refused", path, st.Mode)
	}
	if err := unix.Chmod(fmt.Sprintf("/proc/self/fd/%d", fd), uint32(mode.Perm())); err != nil {
		return fmt.Errorf("chmod %s %o: %w", path, mode.Perm(), err)
	}
	return nil
}
