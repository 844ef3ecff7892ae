package steer

import (
	"fmt"
	"net"

	"golang.org/x/sys/unix"
)

// listenReusePort returns a blocking, close-on-exec TCP socket listening on
// addr with SO_REUSEADDR and SO_REUSEPORT, and the address it bound. An
// address without IP listens on both IPv6 and IPv4, as net.Listen does.
func listenReusePort(addr *net.TCPAddr, backlog int) (int, *net.TCPAddr, error) {
	family, sa := sockaddr(addr)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return -1, nil, fmt.Errorf("steer: socket for %s: %w", addr, err)
	}
	bound, err := bindListen(fd, family, sa, backlog)
	if err != nil {
		_ = unix.Close(fd) // the bind/listen error is the one to report
		return -1, nil, fmt.Errorf("steer: listen on %s: %w", addr, err)
	}
	return fd, bound, nil
}

// sockaddr picks the socket family and address for addr.
func sockaddr(addr *net.TCPAddr) (int, unix.Sockaddr) {
	if ip4 := addr.IP.To4(); ip4 != nil {
		sa := &unix.SockaddrInet4{Port: addr.Port}
		copy(sa.Addr[:], ip4)
		return unix.AF_INET, sa
	}
	sa := &unix.SockaddrInet6{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To16()) // nil IP: the unspecified address
	return unix.AF_INET6, sa
}

// bindListen sets the options, binds and listens fd, and returns the bound
// address.
func bindListen(fd, family int, sa unix.Sockaddr, backlog int) (*net.TCPAddr, error) {
	opts := []struct {
		level, name int
	}{{unix.SOL_SOCKET, unix.SO_REUSEADDR}, {unix.SOL_SOCKET, unix.SO_REUSEPORT}}
	for _, o := range opts {
		if err := unix.SetsockoptInt(fd, o.level, o.name, 1); err != nil {
			return nil, fmt.Errorf("setsockopt %d/%d: %w", o.level, o.name, err)
		}
	}
	if family == unix.AF_INET6 {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 0); err != nil {
			return nil, fmt.Errorf("setsockopt IPV6_V6ONLY=0: %w", err)
		}
	}
	if err := unix.Bind(fd, sa); err != nil {
		return nil, fmt.Errorf("bind: %w", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		return nil, fmt.Errorf("listen(backlog %d): %w", backlog, err)
	}
	return boundAddr(fd)
}

// boundAddr returns the TCP address fd is bound to.
func boundAddr(fd int) (*net.TCPAddr, error) {
	got, err := unix.Getsockname(fd)
	if err != nil {
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	switch s := got.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: net.IP(s.Addr[:]).To16(), Port: s.Port}, nil
	case *unix.SockaddrInet6:
		return &net.TCPAddr{IP: net.IP(s.Addr[:]), Port: s.Port}, nil
	}
	return nil, fmt.Errorf("getsockname: unexpected address type %T", got)
}
