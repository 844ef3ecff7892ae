package supctl

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
)

func TestParseSample(t *testing.T) {
	text := []byte(`# HELP x y
# TYPE supervisor_app_workers gauge
supervisor_app_workers{app="web"} 2
supervisor_http_request_duration_seconds_bucket{app="a\"b\\c",le="+Inf"} 7 1700000000
go_goroutines 12
broken{app="x" 1
`)
	var got []string
	eachSample(text, func(s *sample) {
		got = append(got, fmt.Sprintf("%s %v %g", s.name, s.labels, s.value))
	})
	want := []string{
		`supervisor_app_workers map[app:web] 2`,
		`supervisor_http_request_duration_seconds_bucket map[app:a"b\c le:+Inf] 7`,
		`go_goroutines map[] 12`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("samples:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestQuantile(t *testing.T) {
	inf := math.Inf(1)
	tests := []struct {
		buckets []bucket
		want    float64
	}{
		{[]bucket{{0.01, 0}, {0.1, 100}, {inf, 100}}, 0.0991},
		{[]bucket{{0.01, 99}, {0.1, 100}, {inf, 100}}, 0.01},
		{[]bucket{{0.01, 0}, {0.1, 0}, {inf, 10}}, 0.1},
		{[]bucket{{0.01, 0}, {inf, 0}}, math.NaN()},
	}
	for _, tt := range tests {
		got := quantile(0.99, tt.buckets)
		if !(math.Abs(got-tt.want) < 1e-9 || math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("quantile(0.99, %v) = %g, want %g", tt.buckets, got, tt.want)
		}
	}
}

// appMetrics is the /metrics text of n apps app0..app(n-1) after k
// seconds: each app has used k*0.05 s of CPU and served 100*k requests,
// 2 % of them between 0.25 s and 0.5 s (p99: 0.375 s, interpolated), 2 %
// of them answered 500; its Apdex is 0.93.
func appMetrics(n, k int) string {
	var b strings.Builder
	b.WriteString("# TYPE supervisor_app_cpu_seconds_total counter\n")
	for i := 0; i < n; i++ {
		app := fmt.Sprintf("app%d", i)
		for _, st := range []string{"backoff", "failed", "running", "starting", "stopped", "stopping"} {
			fmt.Fprintf(&b, "supervisor_app_state{app=%q,state=%q} %d\n", app, st, map[bool]int{true: 1}[st == "running"])
		}
		fmt.Fprintf(&b, "supervisor_app_restarts_total{app=%q} %d\n", app, i%3)
		fmt.Fprintf(&b, "supervisor_app_cpu_seconds_total{app=%q} %g\n", app, float64(k)*0.05)
		fmt.Fprintf(&b, "supervisor_app_resident_memory_bytes{app=%q} %d\n", app, 50<<20)
		fmt.Fprintf(&b, "supervisor_app_workers{app=%q} 4\n", app)
		fmt.Fprintf(&b, "supervisor_app_open_fds{app=%q} 20\n", app)
		fmt.Fprintf(&b, "supervisor_listener_queue_length{app=%q,listener=\"tcp://127.0.0.1:%d\"} 3\n", app, 8000+i)
		fmt.Fprintf(&b, "supervisor_http_requests_total{app=%q,status=\"200\"} %d\n", app, 98*k)
		fmt.Fprintf(&b, "supervisor_http_requests_total{app=%q,status=\"500\"} %d\n", app, 2*k)
		fmt.Fprintf(&b, "supervisor_app_apdex{app=%q} 0.93\n", app)
		total := 100 * k
		for _, le := range []string{"0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"} {
			c := 98 * k
			if le == "0.5" || le == "1" || le == "2.5" || le == "5" || le == "10" || le == "+Inf" {
				c = total
			}
			fmt.Fprintf(&b, "supervisor_http_request_duration_seconds_bucket{app=%q,le=%q} %d\n", app, le, c)
		}
		fmt.Fprintf(&b, "supervisor_http_request_duration_seconds_sum{app=%q} %g\n", app, float64(total)*0.01)
		fmt.Fprintf(&b, "supervisor_http_request_duration_seconds_count{app=%q} %d\n", app, total)
	}
	return b.String()
}

// topBackend serves the metrics of n running apps, advancing one second
// of appMetrics at each read.
type topBackend struct {
	backend
	n     int
	reads atomic.Int64
}

func (b *topBackend) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	k := int(b.reads.Add(1))
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprint(w, appMetrics(b.n, k))
}

// serveTop serves b's status and metrics on a control socket until tb
// ends and returns a client of it.
func serveTop(tb testing.TB, b *topBackend) *control.Client {
	tb.Helper()
	dir, err := os.MkdirTemp("", "supctl")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	srv := &control.Server{Backend: b, Metrics: b, Top: b}
	if err := srv.Listen(sock, -1); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	tb.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			tb.Error(err)
		}
	})
	if t, ok := tb.(*testing.T); ok {
		t.Setenv("SUPCTL_SOCKET", sock)
	}
	return control.NewClient(sock)
}

// TestTopPiped: piped, `supctl top` prints the table once, from two
// readings, with rates over the time between them and no escape sequence.
func TestTopPiped(t *testing.T) {
	serveTop(t, &topBackend{n: 3})
	var out, errb bytes.Buffer
	if err := Run([]string{"top", "--interval", "200ms"}, &out, &errb); err != nil {
		t.Fatalf("top: %v (%s)", err, errb.String())
	}
	got := out.String()
	if strings.Contains(got, "\x1b") {
		t.Errorf("piped output has escape sequences: %q", got)
	}
	lines := strings.Split(strings.TrimSpace(got), "\n")
	if len(lines) != 5 || !strings.HasPrefix(lines[0], "supctl top: 3 apps at ") || lines[1] != topHeader {
		t.Fatalf("output:\n%s", got)
	}
	f := strings.Fields(lines[3])
	// app1 running: CPU 0.05 s over ~0.2 s, 50 MiB, 4 workers, queue 3,
	// 100 requests over ~0.2 s, p99 0.375 s, Apdex 0.93, 2 % errors, 1 restart.
	if len(f) != 11 || f[0] != "app1" || f[1] != "running" || f[3] != "50.0M" || f[4] != "4" || f[5] != "3" || f[7] != "375ms" ||
		f[8] != "0.93" || f[9] != "2.0" || f[10] != "1" {
		t.Errorf("app1's row %q: want app1 running CPU 50.0M 4 3 RATE 375ms 0.93 2.0 1", lines[3])
	}
	if _, err := fmt.Sscanf(f[6], "%g", new(float64)); err != nil {
		t.Errorf("request rate %q is not a number", f[6])
	}
	if err := Run([]string{"top", "extra"}, &out, &errb); err == nil {
		t.Errorf("top extra: no usage error")
	}
}

// TestTopTTY: on a terminal the table is redrawn in place (cursor home,
// erasing what is left), states in color unless NO_COLOR.
func TestTopTTY(t *testing.T) {
	c := serveTop(t, &topBackend{n: 2})
	for _, color := range []bool{true, false} {
		var out bytes.Buffer
		o := topOptions{interval: 100 * time.Millisecond, tty: true, color: color, frames: 2}
		if err := runTop(context.Background(), c, &out, o); err != nil {
			t.Fatal(err)
		}
		got := out.String()
		if n := strings.Count(got, ansiHome); n != 2 {
			t.Errorf("color %v: %d redraws, want 2", color, n)
		}
		if !strings.HasSuffix(got, ansiEraseDown) || !strings.Contains(got, ansiEraseLine+"\n") {
			t.Errorf("color %v: no erasing of the rest: %q", color, got)
		}
		if hasGreen := strings.Contains(got, stateColors["running"]); hasGreen != color {
			t.Errorf("color %v: running in green: %v", color, hasGreen)
		}
	}
}

// BenchmarkTopRefresh50Apps is one refresh of `supctl top` over 50 apps:
// status and metrics read over the control socket, parsed, computed and
// drawn. At 1 Hz, ns/op / 1e7 is the percentage of a core (the fake
// server's side included).
func BenchmarkTopRefresh50Apps(b *testing.B) {
	tb := &topBackend{n: 50}
	c := serveTop(b, tb)
	ctx := context.Background()
	prev, err := readTop(ctx, c)
	if err != nil {
		b.Fatal(err)
	}
	var buf []byte
	o := topOptions{interval: time.Second, tty: true, color: true}
	b.ResetTimer()
	for b.Loop() {
		cur, err := readTop(ctx, c)
		if err != nil {
			b.Fatal(err)
		}
		buf = renderTop(buf[:0], topRows(prev, cur), cur.at, o)
		prev = cur
	}
}
