package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// statsdReadBuffer is the socket receive buffer the bridge asks for: a burst
// of small datagrams (three per request) must not overflow it while the
// reader goroutine is descheduled.
const statsdReadBuffer = 4 << 20

// StatsdBridge receives one app's Gunicorn statsd datagrams on a loopback UDP
// port and turns them into Prometheus series of the owning Metrics. One
// goroutine reads the socket and updates the metrics directly; nothing ever
// blocks the sender (UDP drops instead).
type StatsdBridge struct {
	conn *net.UDPConn
	sink *statsdSink
	done chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// NewStatsdBridge binds 127.0.0.1:0 (close-on-exec) and starts the reader.
// Pass Addr() to Gunicorn as --statsd-host. Call Close when the app goes away.
func NewStatsdBridge(app string, m *Metrics) (*StatsdBridge, error) {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("statsd bridge for app %q: listen on 127.0.0.1:0: %w", app, err)
	}
	if err := growReadBuffer(conn, statsdReadBuffer); err != nil {
		m.logger.Warn("statsd bridge: cannot enlarge receive buffer; bursts may be dropped", "app", app, "err", err)
	}
	b := &StatsdBridge{conn: conn, sink: newStatsdSink(app, m), done: make(chan struct{})}
	go b.read(m.logger)
	return b, nil
}

// growReadBuffer asks for n bytes of receive buffer, beyond net.core.rmem_max
// when privileged (SO_RCVBUFFORCE), else up to rmem_max.
func growReadBuffer(conn *net.UDPConn, n int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("raw conn: %w", err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, n)
	}); err != nil {
		return fmt.Errorf("raw conn control: %w", err)
	}
	if serr == nil {
		return nil
	}
	if err := conn.SetReadBuffer(n); err != nil {
		return fmt.Errorf("SO_RCVBUF %d: %w", n, err)
	}
	return nil
}

// Addr is the bound "127.0.0.1:port".
func (b *StatsdBridge) Addr() string { return b.conn.LocalAddr().String() }

// Requests is the request count from gunicorn.requests lines (scaled by
// sample rate). It is not exported as a series: supervisor_http_requests_total
// counts the same requests by status.
func (b *StatsdBridge) Requests() float64 { return math.Float64frombits(b.sink.requests.Load()) }

// Close closes the socket and waits for the reader to stop. Later calls
// return the first call's result.
func (b *StatsdBridge) Close() error {
	b.closeOnce.Do(func() {
		if err := b.conn.Close(); err != nil {
			b.closeErr = fmt.Errorf("statsd bridge for app %q: close %s: %w", b.sink.app, b.Addr(), err)
		}
		<-b.done
	})
	return b.closeErr
}

func (b *StatsdBridge) read(logger *slog.Logger) {
	defer close(b.done)
	buf := make([]byte, 64<<10)
	for {
		n, err := b.conn.Read(buf)
		if n > 0 {
			b.sink.datagram(buf[:n])
		}
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				logger.Error("statsd bridge: read failed; bridge stopped", "app", b.sink.app, "addr", b.Addr(), "err", err)
			}
			return
		}
	}
}

// statsdSink parses statsd lines of one app into the Metrics series. Only the
// bridge's reader goroutine calls it.
type statsdSink struct {
	app       string
	status    *prometheus.CounterVec
	logs      *prometheus.CounterVec
	duration  prometheus.Observer
	workers   prometheus.Gauge
	malformed prometheus.Counter
	requests  atomic.Uint64 // float64 bits; single writer
}

func newStatsdSink(app string, m *Metrics) *statsdSink {
	return &statsdSink{
		app:       app,
		status:    m.httpRequests,
		logs:      m.logMessages,
		duration:  m.httpDuration.WithLabelValues(app),
		workers:   m.statsdWorkers.WithLabelValues(app),
		malformed: m.statsdMalformed.WithLabelValues(app),
	}
}

// datagram handles one datagram: one or more lines separated by '\n'.
func (s *statsdSink) datagram(b []byte) {
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if !s.line(line) {
			s.malformed.Inc()
		}
	}
}

// logLevels are the levels Gunicorn's statsd logger counts, plus the two it
// could count if a subclass asked; anything else is malformed, which keeps
// the level label's cardinality bounded.
var logLevels = map[string]bool{
	"critical": true, "error": true, "warning": true, "exception": true, "info": true, "debug": true,
}

// line applies one statsd line and reports whether it was understood:
// "[prefix.]gunicorn.NAME:VALUE|TYPE[|@RATE][|#TAGS]".
func (s *statsdSink) line(line string) bool {
	name, rest, ok := strings.Cut(line, ":")
	if !ok {
		return false
	}
	fields := strings.Split(rest, "|")
	if len(fields) < 2 {
		return false
	}
	raw, typ := fields[0], fields[1]
	rate := 1.0
	for _, f := range fields[2:] {
		switch {
		case strings.HasPrefix(f, "@"):
			r, err := strconv.ParseFloat(f[1:], 64)
			if err != nil || !(r > 0 && r <= 1) {
				return false
			}
			rate = r
		case strings.HasPrefix(f, "#"):
			// dogstatsd tags: the app label already identifies the source.
		default:
			return false
		}
	}
	metric, ok := gunicornMetric(name)
	if !ok {
		return false
	}
	v, err := strconv.ParseFloat(raw, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return false
	}
	count := v / rate
	if math.IsInf(count, 0) {
		return false // a tiny rate or a huge value: no count is that large
	}

	switch {
	case metric == "requests":
		if typ != "c" || v < 0 {
			return false
		}
		s.requests.Store(math.Float64bits(math.Float64frombits(s.requests.Load()) + count))
	case strings.HasPrefix(metric, "request.status."):
		code := strings.TrimPrefix(metric, "request.status.")
		if typ != "c" || v < 0 || !validStatus(code) {
			return false
		}
		s.status.WithLabelValues(s.app, code).Add(count)
	case metric == "request.duration":
		// Timers are observed once whatever their sample rate: a
		// histogram has no weighted observations, and Gunicorn never
		// samples them.
		if (typ != "ms" && typ != "h") || v < 0 {
			return false
		}
		s.duration.Observe(v / 1000)
	case metric == "workers":
		if typ != "g" {
			return false
		}
		if raw[0] == '+' || raw[0] == '-' {
			s.workers.Add(v) // statsd gauge delta
		} else {
			s.workers.Set(v)
		}
	case strings.HasPrefix(metric, "log."):
		level := strings.TrimPrefix(metric, "log.")
		if typ != "c" || v < 0 || !logLevels[level] {
			return false
		}
		s.logs.WithLabelValues(s.app, level).Add(count)
	default:
		return false
	}
	return true
}

// gunicornMetric strips any --statsd-prefix: it returns what follows the
// last "gunicorn." that starts the name or follows a dot.
func gunicornMetric(name string) (string, bool) {
	const marker = "gunicorn."
	i := strings.LastIndex(name, marker)
	if i < 0 || (i > 0 && name[i-1] != '.') {
		return "", false
	}
	return name[i+len(marker):], true
}

// validStatus accepts HTTP status codes 100-599 written as three digits.
func validStatus(code string) bool {
	return len(code) == 3 && code[0] >= '1' && code[0] <= '5' &&
		code[1] >= '0' && code[1] <= '9' && code[2] >= '0' && code[2] <= '9'
}
