package metrics

import (
	"errors"
	"fmt"
	"net"
	"os"
)

// FD returns the bridge's UDP socket descriptor, for an in-place re-exec of
// the supervisor: Gunicorn keeps sending to the same port, so the socket
// must survive (the caller clears close-on-exec on it).
func (b *StatsdBridge) FD() (int, error) {
	rc, err := b.conn.SyscallConn()
	if err != nil {
		return -1, fmt.Errorf("statsd bridge: %w", err)
	}
	fd := -1
	if err := rc.Control(func(f uintptr) { fd = int(f) }); err != nil {
		return -1, fmt.Errorf("statsd bridge: %w", err)
	}
	return fd, nil
}

// NewStatsdBridgeFromFD resumes a bridge on a UDP socket handed over by the
// previous image (see FD). The descriptor is taken over (closed here after
// being duplicated into the new connection).
func NewStatsdBridgeFromFD(app string, m *Metrics, fd int) (*StatsdBridge, error) {
	f := os.NewFile(uintptr(fd), "statsd-"+app)
	pc, err := net.FilePacketConn(f)
	cerr := f.Close()
	if err != nil {
		return nil, fmt.Errorf("statsd bridge for app %q: fd %d: %w", app, fd, err)
	}
	if cerr != nil {
		return nil, errors.Join(fmt.Errorf("statsd bridge for app %q: close fd %d: %w", app, fd, cerr), pc.Close())
	}
	conn, ok := pc.(*net.UDPConn)
	if !ok {
		return nil, errors.Join(fmt.Errorf("statsd bridge for app %q: fd %d is not a UDP socket", app, fd), pc.Close())
	}
	if err := growReadBuffer(conn, statsdReadBuffer); err != nil {
		m.logger.Warn("statsd bridge: cannot enlarge receive buffer; bursts may be dropped", "app", app, "err", err)
	}
	b := &StatsdBridge{conn: conn, sink: newStatsdSink(app, m), done: make(chan struct{})}
	go b.read(m.logger)
	return b, nil
}
