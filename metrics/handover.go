package metrics

import (
	"fmt"

	"github.com/gunisup/supervisor/upgrade"
)

// FD returns the bridge's UDP socket descriptor, for a self-upgrade (see
// upgrade.UDPFD).
func (b *StatsdBridge) FD() (int, error) {
	fd, err := upgrade.UDPFD(b.conn)
	if err != nil {
		return -1, fmt.Errorf("statsd bridge: %w", err)
	}
	return fd, nil
}

// NewStatsdBridgeFromFD resumes a bridge on a UDP socket handed over by the
// previous image; the descriptor is taken over (see upgrade.AdoptUDP).
func NewStatsdBridgeFromFD(app string, m *Metrics, fd int) (*StatsdBridge, error) {
	conn, err := upgrade.AdoptUDP(fd, "statsd-"+app)
	if err != nil {
		return nil, fmt.Errorf("statsd bridge for app %q: %w", app, err)
	}
	if err := growReadBuffer(conn, statsdReadBuffer); err != nil {
		m.logger.Warn("statsd bridge: cannot enlarge receive buffer; bursts may be dropped", "app", app, "err", err)
	}
	b := &StatsdBridge{conn: conn, sink: newStatsdSink(app, m), done: make(chan struct{})}
	go b.read(m.logger)
	return b, nil
}
