package supervise

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
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

	mu     sync.Mutex
	fd     int
	closed bool
	// ino identifies a Unix socket's file, so Close unlinks only our own path.
	ino uint64
	// hold is the name the socket was bound at (".NAME.held" beside Bound);
	// Bound is a hard link to the same inode. Gunicorn unlinks the name its
	// socket reports (getsockname: hold) when its master exits; clients
	// connect through Bound, which Gunicorn never touches. Relink puts hold
	// back. "" for TCP sockets and inherited ones.
	hold string
}

// Relink makes sure both names of a Unix socket the supervisor bound exist
// and name this socket, re-creating whichever is missing from the other
// (Gunicorn removes the bound name when a master exits; a master that finds
// it gone at its own exit fails before stopping its workers). It returns nil
// for sockets without a held name.
func (s *Socket) Relink() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.hold == "" {
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

// Snapshot describes the socket for status and metrics.
func (s *Socket) Snapshot() ListenerSnapshot {
	return ListenerSnapshot{Address: s.Spec.Raw, Bound: s.Bound, FD: s.FD(), Network: s.network(), Backlog: s.Spec.Backlog}
}

func (s *Socket) network() string {
	sa, err := unix.Getsockname(s.FD())
	if err == nil {
		if _, ok := sa.(*unix.SockaddrUnix); ok {
			return "unix"
		}
	}
	return "tcp"
}

// Close closes the supervisor's descriptor and, for a Unix socket it bound
// itself, removes the path if it still names this socket. Safe to call twice.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
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
	if err := unix.Close(s.fd); err != nil {
		errs = append(errs, fmt.Errorf("close listener %s: %w", s.Spec.Raw, err))
	}
	return errors.Join(errs...)
}

// Bind creates, binds and listens on a TCP or Unix socket for l. A Unix
// socket path left by a dead process (connect refused) is replaced; a path
// where something still accepts, or that is not a socket, is an error.
func Bind(l config.Listener) (*Socket, error) {
	backlog := l.Backlog
	if backlog <= 0 {
		backlog = 2048
	}
	switch l.Network {
	case config.NetTCP:
		return bindTCP(l, backlog)
	case config.NetUnix:
		return bindUnix(l, backlog)
	}
	return nil, fmt.Errorf("listen %s: %s sockets are inherited, not bound", l.Raw, l.Network)
}

func bindTCP(l config.Listener, backlog int) (*Socket, error) {
	ap, err := resolveTCP(l.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
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

func resolveTCP(addr string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return netip.AddrPort{}, err
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("host %q is not an IP address: %w", host, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("port %q: %w", port, err)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(p)), nil
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
	public := l.Address
	// Bind at a hidden name and link the configured path to it: see Socket.hold.
	path := filepath.Join(filepath.Dir(public), "."+filepath.Base(public)+".held")
	if len(path) > 107 {
		return nil, fmt.Errorf("listen %s: %s is longer than a Unix socket path may be (107 bytes)", l.Raw, path)
	}
	for _, p := range []string{public, path} {
		if err := removeStale(p); err != nil {
			return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("listen %s: socket: %w", l.Raw, err)
	}
	// Bind under a tight umask so the path is never more open than asked,
	// then set the configured mode.
	old := unix.Umask(0o177)
	err = unix.Bind(fd, &unix.SockaddrUnix{Name: path})
	unix.Umask(old)
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("listen %s: bind: %w", l.Raw, err)
	}
	fail := func(err error) (*Socket, error) {
		unix.Close(fd)
		_ = unix.Unlink(path)
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	mode := l.Mode
	if mode == 0 {
		mode = 0o660
	}
	if err := unix.Chmod(path, uint32(mode.Perm())); err != nil {
		return fail(fmt.Errorf("chmod %o: %w", mode.Perm(), err))
	}
	uid, gid, err := lookupOwner(l.Owner, l.Group)
	if err != nil {
		return fail(err)
	}
	if uid >= 0 || gid >= 0 {
		if err := unix.Lchown(path, uid, gid); err != nil {
			return fail(fmt.Errorf("chown: %w", err))
		}
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return fail(fmt.Errorf("listen: %w", err))
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(fmt.Errorf("stat: %w", err))
	}
	if err := unix.Link(path, public); err != nil {
		return fail(fmt.Errorf("link %s to %s: %w", public, path, err))
	}
	return &Socket{Spec: l, Bound: public, fd: fd, ino: st.Ino, hold: path}, nil
}

// removeStale removes a Unix socket file nobody accepts on.
func removeStale(path string) error {
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
		c.Close()
		return fmt.Errorf("%s is in use by another process", path)
	}
	if err := unix.Unlink(path); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}

func lookupOwner(owner, group string) (int, int, error) {
	uid, gid := -1, -1
	if owner != "" {
		if n, err := strconv.Atoi(owner); err == nil {
			uid = n
		} else {
			u, err := user.Lookup(owner)
			if err != nil {
				return 0, 0, fmt.Errorf("socket_owner %q: %w", owner, err)
			}
			uid, _ = strconv.Atoi(u.Uid)
		}
	}
	if group != "" {
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else {
			g, err := user.LookupGroup(group)
			if err != nil {
				return 0, 0, fmt.Errorf("socket_group %q: %w", group, err)
			}
			gid, _ = strconv.Atoi(g.Gid)
		}
	}
	return uid, gid, nil
}

// AdoptFD wraps a listening descriptor the supervisor inherited (from systemd
// socket activation or from its previous image across a self-upgrade). The fd
// is made CLOEXEC. unlinkPath, when non-empty, is the Unix path Close removes.
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

// bindProbe binds a private loopback listener for one generation: only that
// generation holds it, so a request answered there proves one of its own
// workers booted, while the shared socket is still answered by the old one.
func bindProbe() (*Socket, error) {
	return Bind(config.Listener{Raw: "tcp://127.0.0.1:0 (probe)", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 64})
}
