package upgrade

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// UDPFD returns the descriptor of conn, for handing a statsd bridge's socket
// to the next image: Gunicorn keeps sending to the same port, so the socket
// must survive the exec (Exec clears close-on-exec on it).
func UDPFD(conn *net.UDPConn) (int, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("udp socket %s: %w", conn.LocalAddr(), err)
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, fmt.Errorf("udp socket %s: %w", conn.LocalAddr(), err)
	}
	return fd, nil
}

// AdoptUDP wraps a UDP socket handed over by the previous image (see UDPFD).
// The descriptor is taken over: it is closed here after being duplicated
// into the returned connection, also on error.
func AdoptUDP(fd int, name string) (*net.UDPConn, error) {
	f := os.NewFile(uintptr(fd), name)
	pc, err := net.FilePacketConn(f)
	cerr := f.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: fd %d: %w", name, fd, err)
	}
	if cerr != nil {
		return nil, errors.Join(fmt.Errorf("%s: close fd %d: %w", name, fd, cerr), pc.Close())
	}
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, errors.Join(fmt.Errorf("%s: fd %d is not a UDP socket", name, fd), pc.Close())
	}
	return conn, nil
}
