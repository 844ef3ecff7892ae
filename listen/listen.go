package listen

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/sockfile"
)

// Socket is a listening socket the supervisor binds (or inherits from systemd
// or from its previous image) and holds for its whole life, so that while a
// Gunicorn master crashes, restarts or is swapped, connections wait in the
// kernel's backlog instead of being refused.
//
// The descriptor is a raw fd, never an *os.File: Go's (*os.File).Fd() would put
// the shared open socket into blocking mode under Gunicorn's workers. It is
// CLOEXEC; the spawn step dups it onto the child's fd 3.. explicitly.
type Socket struct {
	Spec config.Listener
	// Bound is the address actually bound ("127.0.0.1:8000" or a path).
	Bound string

	mu sync.Mutex
	fd int
	// closed: the descriptor is closed (Shut or Close); removed: the paths
	// are removed too (Close). Relink works until removed.
	closed, removed bool
	// turn serialises the stops of the Gunicorn masters sharing this socket
	// (see SignalStop).
	turn sync.Mutex
	// ino identifies a Unix socket's file, so Close unlinks only our own path.
	ino uint64
	// hold is the name the socket was bound at (".NAME.held" beside Bound);
	// Bound is a hard link to the same inode. Gunicorn unlinks the name its
	// socket reports (getsockname: hold) when its master exits; clients
	// connect through Bound, which Gunicorn never touches. Relink puts hold
	// back. "" for TCP sockets and inherited ones.
	hold string
	// unpublished: Bound names another generation's socket now (see
	// UnixGens.Serve); Relink leaves both names alone.
	unpublished bool
}

// Relink makes sure both names of a Unix socket the supervisor bound exist
// and name this socket, re-creating whichever is missing from the other
// (Gunicorn removes the bound name when a master exits; a master that finds
// it gone at its own exit fails before stopping its workers). It works after
// Shut, until Close. It returns nil for sockets without a held name and for
// a generation's socket whose configured path was switched to another one
// (nothing may re-create that path then), and an error when both names are
// gone.
func (s *Socket) Relink() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.relinkLocked()
}

func (s *Socket) relinkLocked() error {
	if s.removed || s.hold == "" || s.unpublished {
		return nil
	}
	ours := func(p string) bool {
		var st unix.Stat_t
		return unix.Lstat(p, &st) == nil && st.Ino == s.ino
	}
	switch hold, pub := ours(s.hold), ours(s.Bound); {
	case hold && pub:
		return nil
	case pub:
		if err := unix.Link(s.Bound, s.hold); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("listen %s: re-create %s: %w", s.Spec.Raw, s.hold, err)
		}
	case hold:
		if err := unix.Link(s.hold, s.Bound); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("listen %s: re-create %s: %w", s.Spec.Raw, s.Bound, err)
		}
	default:
		return fmt.Errorf("listen %s: both %s and %s are gone: the socket can no longer be reached by path", s.Spec.Raw, s.Bound, s.hold)
	}
	return nil
}

// FD returns the supervisor's descriptor, or -1 after Close.
func (s *Socket) FD() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return -1
	}
	return s.fd
}

// Held returns what identifies a Unix socket the supervisor bound across a
// self-upgrade: the inode of its file and its hidden bound name (0 and ""
// for TCP and inherited sockets). AdoptHeld takes them back.
func (s *Socket) Held() (ino uint64, hold string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ino, s.hold
}

// Network is "unix" or "tcp", as the kernel reports the socket (tcp after Close).
func (s *Socket) Network() string {
	sa, err := unix.Getsockname(s.FD())
	if err == nil {
		if _, ok := sa.(*unix.SockaddrUnix); ok {
			return "unix"
		}
	}
	return "tcp"
}

// Shut closes the supervisor's descriptor and keeps the paths: once every
// process holding the socket has closed it, clients are refused, while the
// Gunicorn masters still stopping find the name they unlink (Relink keeps
// re-creating it). Close removes the paths. Safe to call twice.
func (s *Socket) Shut() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shutLocked()
}

func (s *Socket) shutLocked() error {
	if s.closed {
		return nil
	}
	s.closed = true
	if err := unix.Close(s.fd); err != nil {
		return fmt.Errorf("close listener %s: %w", s.Spec.Raw, err)
	}
	return nil
}

// Close closes the supervisor's descriptor and, for a Unix socket it bound
// itself, removes both paths where they still name this socket. Safe to call
// twice, and after Shut.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.removed {
		return nil
	}
	s.removed = true
	var errs []error
	if s.ino != 0 {
		for _, p := range []string{s.Bound, s.hold} {
			var st unix.Stat_t
			if p != "" && unix.Lstat(p, &st) == nil && st.Ino == s.ino {
				if err := unix.Unlink(p); err != nil {
					errs = append(errs, fmt.Errorf("remove socket %s: %w", p, err))
				}
			}
		}
	}
	errs = append(errs, s.shutLocked())
	return errors.Join(errs...)
}

// Bind creates, binds and listens on a TCP or Unix socket for l. A Unix
// socket path left by a dead process (connect refused) is replaced; a path
// where something still accepts, or that is not a socket, is an error.
func Bind(l config.Listener) (*Socket, error) {
	backlog := backlogOf(l)
	switch l.Network {
	case config.NetTCP:
		return bindTCP(l, backlog)
	case config.NetUnix:
		return bindUnix(l, backlog)
	}
	return nil, fmt.Errorf("listen %s: %s sockets are inherited, not bound", l.Raw, l.Network)
}

func bindTCP(l config.Listener, backlog int) (*Socket, error) {
	ap, err := l.TCPAddr()
	if err != nil {
		return nil, err
	}
	family := unix.AF_INET
	var sa unix.Sockaddr
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listen %s: socket: %w", l.Raw, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: SO_REUSEADDR: %w", l.Raw, err)
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
			unix.Close(fd)
			return nil, fmt.Errorf("listen %s: IPV6_V6ONLY: %w", l.Raw, err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: bind: %w", l.Raw, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: listen: %w", l.Raw, err)
	}
	bound, err := sockName(fd)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	return &Socket{Spec: l, Bound: bound, fd: fd}, nil
}

func sockName(fd int) (string, error) {
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return "", fmt.Errorf("getsockname: %w", err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String(), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String(), nil
	case *unix.SockaddrUnix:
		return a.Name, nil
	}
	return "", fmt.Errorf("getsockname: unexpected address %T", sa)
}

func bindUnix(l config.Listener, backlog int) (*Socket, error) {
	// Bind at a hidden name and link the configured path to it: see Socket.hold.
	if err := sockfile.RemoveStale(l.Address); err != nil {
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	return bindUnixAt(l, l.HeldPath(), backlog, true)
}

// bindUnixAt binds and listens on a Unix socket for l at the hidden name
// path (with l's mode and owner) and, when publish is true, links l's
// configured path to it. The returned Socket's Bound is the configured path
// either way.
func bindUnixAt(l config.Listener, path string, backlog int, publish bool) (*Socket, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listen %s: socket: %w", l.Raw, err)
	}
	mode := l.Mode
	if mode == 0 {
		mode = 0o660
	}
	uid, gid := -1, -1
	if l.Owner != "" {
		uid = l.OwnerUID
	}
	if l.Group != "" {
		gid = l.GroupGID
	}
	if err := sockfile.Bind(fd, path, mode, uid, gid); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	fail := func(err error) (*Socket, error) {
		unix.Close(fd)
		_ = unix.Unlink(path) // the name we just bound; nothing else uses it yet
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(fmt.Errorf("stat: %w", err))
	}
	if publish {
		if err := unix.Link(path, l.Address); err != nil {
			return fail(fmt.Errorf("link %s to %s: %w", l.Address, path, err))
		}
	}
	return &Socket{Spec: l, Bound: l.Address, fd: fd, ino: st.Ino, hold: path, unpublished: !publish}, nil
}

// AdoptFD wraps a listening stream socket the supervisor inherited (from
// systemd socket activation or from its previous image across a
// self-upgrade) and makes it CLOEXEC. When ownsPath is true and the socket is
// bound to a Unix path, Close removes that path (if it still names this
// socket); otherwise Close only closes the descriptor.
func AdoptFD(l config.Listener, fd int, ownsPath bool) (*Socket, error) {
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("listen %s: fd %d: %w", l.Raw, fd, err)
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return nil, fmt.Errorf("listen %s: fd %d is not a socket: %w", l.Raw, fd, err)
	}
	if typ != unix.SOCK_STREAM {
		return nil, fmt.Errorf("listen %s: fd %d is not a stream socket", l.Raw, fd)
	}
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil || acc != 1 {
		return nil, fmt.Errorf("listen %s: fd %d is not listening", l.Raw, fd)
	}
	bound, err := sockName(fd)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	s := &Socket{Spec: l, Bound: bound, fd: fd}
	if ownsPath && len(bound) > 0 && bound[0] == '/' {
		var st unix.Stat_t
		if err := unix.Lstat(bound, &st); err == nil {
			s.ino = st.Ino
		}
	}
	return s, nil
}

// AdoptHeld wraps a Unix socket the previous image bound itself and handed
// over with the values of Held: Close removes its paths, Relink restores its
// hidden name, and Bound is the configured path again.
func AdoptHeld(l config.Listener, fd int, ino uint64, hold string) (*Socket, error) {
	s, err := AdoptFD(l, fd, false)
	if err != nil {
		return nil, err
	}
	s.ino, s.hold = ino, hold
	if hold != "" {
		s.Bound = l.Address // AdoptFD named it by its bound (hidden) name
	}
	return s, nil
}

// Probe binds a private loopback listener for one generation: only that
// generation holds it, so a request answered there proves one of its own
// workers booted, while the shared socket is still answered by the old one.
func Probe() (*Socket, error) {
	return Bind(config.Listener{Raw: "tcp://127.0.0.1:0 (probe)", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 64})
}
