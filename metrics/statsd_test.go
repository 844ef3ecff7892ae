package metrics

import (
	"math"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/testenv"
)

// statsdState is what the metrics of app "web" show after some lines.
type statsdState struct {
	requests  float64            // StatsdBridge.Requests
	status    map[string]float64 // http_requests_total by status
	durations uint64             // http_request_duration_seconds count
	durSum    float64            // ... and sum
	logs      map[string]float64 // app_log_messages_total by level
	workers   float64            // app_statsd_workers (NaN: absent)
	malformed float64
}

func readStatsdState(tb testing.TB, m *Metrics, sink *statsdSink) statsdState {
	tb.Helper()
	st := statsdState{status: map[string]float64{}, logs: map[string]float64{}, workers: math.NaN()}
	st.requests = math.Float64frombits(sink.requests.Load())
	mfs, err := m.Registry().Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		for _, s := range mf.GetMetric() {
			labels := map[string]string{}
			for _, lp := range s.GetLabel() {
				labels[lp.GetName()] = lp.GetValue()
			}
			if labels["app"] != "web" {
				continue
			}
			switch mf.GetName() {
			case "supervisor_http_requests_total":
				st.status[labels["status"]] = s.GetCounter().GetValue()
			case "supervisor_http_request_duration_seconds":
				st.durations = s.GetHistogram().GetSampleCount()
				st.durSum = s.GetHistogram().GetSampleSum()
			case "supervisor_app_log_messages_total":
				st.logs[labels["level"]] = s.GetCounter().GetValue()
			case "supervisor_app_statsd_workers":
				st.workers = s.GetGauge().GetValue()
			case "supervisor_statsd_malformed_total":
				st.malformed = s.GetCounter().GetValue()
			}
		}
	}
	return st
}

func TestStatsdLines(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, st statsdState)
	}{
		{
			name: "gunicorn 20.1.0 access",
			input: "gunicorn.request.duration:12.3|ms\ngunicorn.requests:1|c|@1.0\n" +
				"gunicorn.request.status.200:1|c|@1.0",
			check: func(t *testing.T, st statsdState) {
				if st.requests != 1 || st.status["200"] != 1 || len(st.status) != 1 || st.durations != 1 ||
					math.Abs(st.durSum-0.0123) > 1e-9 || st.malformed != 0 {
					t.Errorf("%+v", st)
				}
			},
		},
		{
			name:  "prefix, sample rate and dogstatsd tags",
			input: "myprefix.gunicorn.request.status.503:1|c|@0.5|#env:prod,canary\nmy.gunicorn.requests:2|c|@0.25\n",
			check: func(t *testing.T, st statsdState) {
				if st.status["503"] != 2 || st.requests != 8 || st.malformed != 0 {
					t.Errorf("%+v", st)
				}
			},
		},
		{
			name:  "prefix that contains gunicorn",
			input: "gunicorn.blue.gunicorn.request.status.404:1|c",
			check: func(t *testing.T, st statsdState) {
				if st.status["404"] != 1 || st.malformed != 0 {
					t.Errorf("%+v", st)
				}
			},
		},
		{
			name:  "workers gauge and deltas",
			input: "gunicorn.workers:4|g\ngunicorn.workers:-1|g\ngunicorn.workers:+2|g",
			check: func(t *testing.T, st statsdState) {
				if st.workers != 5 || st.malformed != 0 {
					t.Errorf("%+v", st)
				}
			},
		},
		{
			name: "log levels",
			input: "gunicorn.log.error:1|c\ngunicorn.log.critical:1|c|@1.0\ngunicorn.log.warning:1|c\n" +
				"gunicorn.log.exception:1|c\ngunicorn.log.error:1|c|#a:b",
			check: func(t *testing.T, st statsdState) {
				want := map[string]float64{"error": 2, "critical": 1, "warning": 1, "exception": 1}
				for k, v := range want {
					if st.logs[k] != v {
						t.Errorf("log %s = %v, want %v", k, st.logs[k], v)
					}
				}
				if st.malformed != 0 {
					t.Errorf("malformed %v", st.malformed)
				}
			},
		},
		{
			name:  "CRLF and blank lines",
			input: "gunicorn.request.status.200:1|c\r\n\n\r\ngunicorn.request.status.200:1|c\n",
			check: func(t *testing.T, st statsdState) {
				if st.status["200"] != 2 || st.malformed != 0 {
					t.Errorf("%+v", st)
				}
			},
		},
		{
			name: "malformed and unknown",
			input: strings.Join([]string{
				"garbage",
				"gunicorn.requests",                // no value
				"gunicorn.requests:1",              // no type
				"gunicorn.requests:x|c",            // bad value
				"gunicorn.requests:NaN|c",          // not finite
				"gunicorn.requests:-1|c",           // counter going down
				"gunicorn.requests:1|g",            // wrong type
				"gunicorn.requests:1|c|@0",         // bad rate
				"gunicorn.requests:1|c|@2",         // bad rate
				"gunicorn.requests:1|c|x",          // unknown field
				"gunicorn.request.status.2000:1|c", // not a status
				"gunicorn.request.status.abc:1|c",  // not a status
				"gunicorn.request.status.999:1|c",  // out of range
				"gunicorn.request.duration:-5|ms",  // negative duration
				"gunicorn.request.duration:5|c",    // wrong type
				"gunicorn.log.trace:1|c",           // unknown level
				"gunicorn.backlog:3|h",             // newer Gunicorn metric
				"notgunicorn.requests:1|c",         // no gunicorn. component
				"other.metric:1|c",                 // someone else's metric
				"gunicorn.workers:many|g",          // bad gauge
			}, "\n"),
			check: func(t *testing.T, st statsdState) {
				if st.malformed != 20 || st.requests != 0 || len(st.status) != 0 || st.durations != 0 || len(st.logs) != 0 {
					t.Errorf("%+v", st)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(&fixedSource{}, Options{})
			sink := newStatsdSink("web", m)
			sink.datagram([]byte(tc.input))
			tc.check(t, readStatsdState(t, m, sink))
		})
	}
}

func TestStatsdBridgeUDP(t *testing.T) {
	m := New(&fixedSource{}, Options{})
	b, err := NewStatsdBridge("web", m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if !strings.HasPrefix(b.Addr(), "127.0.0.1:") || strings.HasSuffix(b.Addr(), ":0") {
		t.Fatalf("Addr() = %q, want 127.0.0.1:<port>", b.Addr())
	}
	c, err := net.Dial("udp", b.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("close client: %v", err)
		}
	}()
	const n = 50
	for i := range n {
		// One datagram per line, as Gunicorn sends, and every tenth one
		// batched with several lines.
		dgrams := []string{"gunicorn.request.status.200:1|c|@1.0", "gunicorn.request.duration:3.5|ms", "gunicorn.requests:1|c|@1.0"}
		if i%10 == 0 {
			dgrams = []string{strings.Join(dgrams, "\n") + "\n"}
		}
		for _, d := range dgrams {
			if _, err := c.Write([]byte(d)); err != nil {
				t.Fatalf("send %q: %v", d, err)
			}
		}
	}
	if _, err := c.Write([]byte("bogus line")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "statsd counts to arrive", func() bool {
		st := readStatsdState(t, m, b.sink)
		return st.status["200"] == n && st.durations == n && st.malformed == 1 && b.Requests() == n
	})
}

func TestStatsdBridgeClose(t *testing.T) {
	m := New(&fixedSource{}, Options{})
	b, err := NewStatsdBridge("web", m)
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()
	for i := range 3 {
		if err := b.Close(); err != nil {
			t.Fatalf("close #%d: %v", i+1, err)
		}
	}
	// The port is released: it can be bound again.
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatalf("rebinding %s after Close: %v", addr, err)
	}
	if err := pc.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestStatsdBridgeHandover passes a bridge's socket to a new bridge, as an
// in-place re-exec does: the address stays and datagrams keep being counted.
func TestStatsdBridgeHandover(t *testing.T) {
	m := New(&fixedSource{}, Options{})
	old, err := NewStatsdBridge("web", m)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := old.FD()
	if err != nil {
		t.Fatal(err)
	}
	// The re-exec keeps the descriptor alive across the old image's exit;
	// here a dup stands in for it while the old bridge closes.
	dup, err := unix.Dup(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := old.Addr()
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := NewStatsdBridgeFromFD("web", m, dup)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	if b.Addr() != addr {
		t.Errorf("Addr() = %s after handover, want %s", b.Addr(), addr)
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := c.Close(); err != nil {
			t.Errorf("close client: %v", err)
		}
	}()
	if _, err := c.Write([]byte("gunicorn.request.status.200:1|c|@1.0")); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "datagram counted by the new bridge", func() bool {
		return readStatsdState(t, m, b.sink).status["200"] == 1
	})
}
