package supctl

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gunisup/supervisor/control"
)

// routeMetrics is the filtered /metrics text of app web's routes (and one
// series of app api, which top must ignore) after k seconds:
//
//	/                 100 req/s, all under 5 ms
//	/api/items/:id     50 req/s, 10 % of them 500; 90 % under 50 ms, the
//	                   rest under 0.5 s (p99 0.455 s, interpolated)
//	/slow              10 req/s, all between 0.5 s and 5 s (p99 4.955 s)
func routeMetrics(k int) string {
	var b strings.Builder
	type route struct {
		name       string
		ok, failed int
		buckets    [4]int // le 0.005, 0.05, 0.5, 5 (+Inf: the total)
	}
	for _, r := range []route{
		{"/", 100, 0, [4]int{100, 100, 100, 100}},
		{"/api/items/:id", 45, 5, [4]int{0, 45, 50, 50}},
		{"/slow", 10, 0, [4]int{0, 0, 0, 10}},
	} {
		fmt.Fprintf(&b, "supervisor_route_requests_total{app=\"web\",code=\"200\",method=\"GET\",route=%q} %d\n", r.name, r.ok*k)
		if r.failed > 0 {
			fmt.Fprintf(&b, "supervisor_route_requests_total{app=\"web\",code=\"500\",method=\"GET\",route=%q} %d\n", r.name, r.failed*k)
		}
		for i, le := range []string{"0.005", "0.05", "0.5", "5"} {
			fmt.Fprintf(&b, "supervisor_route_request_duration_seconds_bucket{app=\"web\",route=%q,le=%q} %d\n", r.name, le, r.buckets[i]*k)
		}
		fmt.Fprintf(&b, "supervisor_route_request_duration_seconds_bucket{app=\"web\",route=%q,le=\"+Inf\"} %d\n", r.name, (r.ok+r.failed)*k)
	}
	fmt.Fprintf(&b, "supervisor_route_requests_total{app=\"api\",code=\"500\",method=\"GET\",route=\"/x\"} %d\n", 1000*k)
	fmt.Fprintf(&b, "supervisor_route_queue_seconds_count{app=\"web\"} %d\n", 50*k) // no route label: not a route
	return b.String()
}

// routesBackend serves routeMetrics, advancing a second at each read, and
// records the queries of the metrics requests.
type routesBackend struct {
	topBackend
	mu      sync.Mutex
	queries []string
	reads   atomic.Int64
}

func (b *routesBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	b.queries = append(b.queries, r.URL.RawQuery)
	b.mu.Unlock()
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	fmt.Fprint(w, routeMetrics(int(b.reads.Add(1))))
}

// TestTopRoutes: `supctl top --routes web` asks for web's route series
// only, and prints the slowest routes by p99 and the routes with the most
// 5xx answers, from the difference between two readings.
func TestTopRoutes(t *testing.T) {
	b := &routesBackend{}
	serveTopWith(t, b)
	var out, errb bytes.Buffer
	if err := Run([]string{"top", "--routes", "web", "--interval", "200ms"}, &out, &errb); err != nil {
		t.Fatalf("top --routes: %v (%s)", err, errb.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "supctl top --routes web: 3 routes at ") {
		t.Fatalf("output:\n%s", out.String())
	}
	slowest := []string{fields(lines[2])[0] + " " + fields(lines[2])[2], fields(lines[3])[0] + " " + fields(lines[3])[2], fields(lines[4])[0] + " " + fields(lines[4])[2]}
	if want := []string{"/slow 5.0s", "/api/items/:id 455ms", "/ 5ms"}; strings.Join(slowest, ",") != strings.Join(want, ",") {
		t.Errorf("slowest routes %q, want %q", slowest, want)
	}
	if f := fields(lines[7]); len(f) != 4 || f[0] != "/api/items/:id" || f[3] != "10.0" {
		t.Errorf("most errors row %q: want /api/items/:id with 10.0 %% errors", lines[7])
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, q := range b.queries {
		if q != "app=web&prefix=supervisor_route_" {
			t.Errorf("metrics read with query %q, want only web's route series", q)
		}
	}
}

func fields(s string) []string { return strings.Fields(s) }

// serveTopWith serves b's status and metrics on a control socket until t
// ends, for supctl run with SUPCTL_SOCKET.
func serveTopWith(t *testing.T, b interface {
	control.Backend
	http.Handler
}) {
	t.Helper()
	dir, err := os.MkdirTemp("", "supctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	srv := &control.Server{Backend: b, Metrics: b}
	if err := srv.Listen(sock, -1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	t.Setenv("SUPCTL_SOCKET", sock)
}
