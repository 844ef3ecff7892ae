package apm

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
)

func TestCollapse(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/", "/"},
		{"/api/items", "/api/items"},
		{"/api/items/42", "/api/items/:id"},
		{"/api/items/42/", "/api/items/:id/"},
		{"/u/0b6c3f5e-5a1d-4c61-9f7e-2d3c4b5a6f70/x", "/u/:id/x"},
		{"/c/deadbeef1", "/c/:id"},
		{"/c/deadbeef", "/c/deadbeef"}, // no digit: a word
		{"/c/abc1", "/c/abc1"},         // too short for a hex id
		{"/v2/users", "/v2/users"},
		{"/a/1/b/22", "/a/:id/b/:id"},
		{"/x/0b6c3f5e-5a1d-4c61-9f7e-2d3c4b5a6f7z", "/x/0b6c3f5e-5a1d-4c61-9f7e-2d3c4b5a6f7z"},
	}
	for _, tt := range tests {
		if got := collapse(tt.path); got != tt.want {
			t.Errorf("collapse(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

func TestRouterTemplatesAndCaps(t *testing.T) {
	total := &budget{limit: 5}
	r := newRouter([]string{"/api/items/:name", "/static/:f"}, 3, total)
	tests := []struct{ path, want string }{
		{"/api/items/foo", "/api/items/:name"},
		{"/api/items/foo/bar", "/api/items/foo/bar"}, // one segment only
		{"/static/app.css?v=1", "/static/:f"},
		{"/a", "/a"},
		{"/b/7", "/b/:id"},
		{"/c", OtherRoute}, // per-app cap of 3 reached
		{"/a", "/a"},       // known routes stay
	}
	for _, tt := range tests {
		if got := r.route(tt.path); got != tt.want {
			t.Errorf("route(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
	r2 := newRouter(nil, 10, total)
	for _, p := range []string{"/x", "/y", "/z"} {
		r2.route(p)
	}
	if got := r2.route("/y"); got != "/y" {
		t.Errorf("route(/y) = %q", got)
	}
	if got := r2.route("/z"); got != OtherRoute {
		t.Errorf("route(/z) past the total cap = %q, want other", got)
	}
	r.release()
	if got := r2.route("/w"); got != "/w" {
		t.Errorf("route(/w) after a release = %q, want /w", got)
	}
}

// clock is a settable time for a Set.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *clock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func testApp(s *Set, routes ...string) *App {
	return s.Configure(&config.App{Name: "web", Routes: config.RouteMetrics{Enabled: true, Routes: routes,
		Cap: 10, ApdexT: 100 * time.Millisecond, CompareWindow: 10 * time.Second}})
}

// lines renders n requests as the logger class writes them.
func lines(n int, method, path string, status int, d time.Duration) string {
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, "1 7 6 %s %d %d -1 0 %s\n", method, status, d.Microseconds(), path)
	}
	return b.String()
}

func TestRecordMetrics(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := NewSet(Options{Now: c.now})
	a := testApp(s)
	g := a.Gen(1, 6, filepath.Join(t.TempDir(), "r1"), nil)
	in := lines(3, "GET", "/items/1", 200, 50*time.Millisecond) + // satisfied
		lines(1, "GET", "/items/2", 200, 300*time.Millisecond) + // tolerating
		lines(1, "POST", "/items", 503, time.Millisecond) + // frustrated: 5xx
		lines(1, "BREW", "/items", 200, time.Millisecond) + // method other
		"garbage\n" + "1 7 6 GET 200 1000 2500 4 /q\n"
	if err := g.Read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	want := `
# HELP supervisor_access_lines_dropped_total Access lines lost: refused by a full pipe (counted by the worker) or not understood by the supervisor.
# TYPE supervisor_access_lines_dropped_total counter
supervisor_access_lines_dropped_total{app="web"} 5
# HELP supervisor_app_apdex Apdex score of the app's requests over the last minute: (satisfied + tolerating/2) / all; satisfied within apdex_t, tolerating within 4 apdex_t, frustrated beyond or on a 5xx.
# TYPE supervisor_app_apdex gauge
supervisor_app_apdex{app="web"} 0.7857142857142857
# HELP supervisor_route_requests_total Requests answered by the app's workers, by route template, method and status code, from the supervisor's access logger.
# TYPE supervisor_route_requests_total counter
supervisor_route_requests_total{app="web",code="200",method="GET",route="/items/:id"} 4
supervisor_route_requests_total{app="web",code="200",method="GET",route="/q"} 1
supervisor_route_requests_total{app="web",code="200",method="other",route="/items"} 1
supervisor_route_requests_total{app="web",code="503",method="POST",route="/items"} 1
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(want), "supervisor_route_requests_total",
		"supervisor_app_apdex", "supervisor_access_lines_dropped_total"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(s, "supervisor_route_queue_seconds"); n != 1 {
		t.Errorf("queue series = %d, want 1", n)
	}
	info := `
# HELP supervisor_generation_info 1 for each generation of the app whose master runs; release is the git commit or REVISION of its directory, else the directory's name.
# TYPE supervisor_generation_info gauge
supervisor_generation_info{app="web",generation="1",release="r1"} 1
`
	if err := testutil.CollectAndCompare(s, strings.NewReader(info), "supervisor_generation_info"); err != nil {
		t.Error(err)
	}
	a.End(1)
	if n := testutil.CollectAndCount(s, "supervisor_generation_info"); n != 0 {
		t.Errorf("generation_info after End = %d series, want 0", n)
	}
	if lint, err := testutil.CollectAndLint(s); err != nil || len(lint) > 0 {
		t.Errorf("lint: %v %v", lint, err)
	}
}

func TestComparison(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := NewSet(Options{Now: c.now})
	a := testApp(s, "/slow")
	old := a.Gen(1, 6, "/srv/r1", func() (Usage, bool) {
		return Usage{CPU: time.Duration(c.now().Unix()) * 100 * time.Millisecond, RSS: 40 << 20, Workers: 2}, true
	})
	cur := a.Gen(2, 8, "/srv/r2", nil)
	feed := func(g *Gen, slow time.Duration) {
		for range 10 {
			c.add(time.Second)
			in := lines(20, "GET", "/fast", 200, 2*time.Millisecond) + lines(10, "GET", "/slow", 200, slow)
			in = strings.ReplaceAll(in, "1 7 6 ", fmt.Sprintf("1 7 %d ", g.Master))
			for _, l := range strings.Split(strings.TrimSpace(in), "\n") {
				al, err := gunicorn.ParseAccess([]byte(l))
				if err != nil {
					t.Fatal(err)
				}
				a.record(g, al, c.now())
			}
		}
	}
	old.sample(c.now(), time.Minute)
	feed(old, 10*time.Millisecond)
	if w := a.Swapped(1, 2); w != 10*time.Second {
		t.Fatalf("Swapped = %v, want the 10s window", w)
	}
	if got := a.Comparison(); !strings.Contains(got, "generation 2 vs 1: comparison at") {
		t.Errorf("pending comparison = %q", got)
	}
	feed(cur, 250*time.Millisecond)
	a.mu.Lock()
	pending := a.cmp
	a.timer.Stop()
	a.mu.Unlock()
	a.finish(pending)
	got := a.Comparison()
	for _, want := range []string{"generation 2 (r2) vs 1 (r1) over 10s", "30.0 -> 30.0 req/s", "errors 0.00% -> 0.00%",
		"cpu/worker 5.0% -> -", "rss/worker 20MiB -> -", "p99 moved: /slow 11.4ms -> 254ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("comparison %q lacks %q", got, want)
		}
	}
	if strings.Contains(got, "/fast") {
		t.Errorf("comparison %q names the unchanged route /fast", got)
	}
}

func TestRelease(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, files map[string]string) string {
		d := filepath.Join(dir, name)
		for p, body := range files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(d, p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(d, p), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return d
	}
	sha := "0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		dir, want string
	}{
		{mk("detached", map[string]string{".git/HEAD": sha + "\n"}), "0123456789ab"},
		{mk("branch", map[string]string{".git/HEAD": "ref: refs/heads/main\n", ".git/refs/heads/main": sha + "\n"}), "0123456789ab"},
		{mk("packed", map[string]string{".git/HEAD": "ref: refs/heads/main\n", ".git/packed-refs": "# x\n" + sha + " refs/heads/main\n"}), "0123456789ab"},
		{mk("revision", map[string]string{"REVISION": " v1.2.3 \nmore\n"}), "v1.2.3"},
		{mk("plain-1234", map[string]string{"app.py": ""}), "plain-1234"},
		{mk("badgit", map[string]string{".git/HEAD": "ref: refs/heads/none\n", "REVISION": "r9"}), "r9"},
	}
	for _, tt := range tests {
		if got := Release(tt.dir); got != tt.want {
			t.Errorf("Release(%s) = %q, want %q", filepath.Base(tt.dir), got, tt.want)
		}
	}
}

// TestLinesFollowTheirMaster: a line on one generation's pipe written
// under another known master (a USR2 child inherits the pipe) counts for
// that one; an unknown master's line counts for the pipe's.
func TestLinesFollowTheirMaster(t *testing.T) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	s := NewSet(Options{Now: c.now})
	a := testApp(s)
	old := a.Gen(1, 6, "/srv/r1", nil)
	usr2 := a.Gen(2, 8, "/srv/r2", nil)
	in := "1 7 6 GET 200 1000 -1 0 /a\n1 9 8 GET 200 1000 -1 0 /a\n1 9 8 GET 200 1000 -1 0 /a\n1 5 1 GET 200 1000 -1 0 /a\n"
	if err := old.Read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	sec := c.now().Unix()
	for _, tt := range []struct {
		g    *Gen
		want uint64
	}{{old, 2}, {usr2, 2}} {
		if got := tt.g.window(sec, sec+1).requests; got != tt.want {
			t.Errorf("generation %d: %d requests, want %d", tt.g.ID, got, tt.want)
		}
	}
}

// TestNilSet: a nil Set is route metrics off: no app state, no comparison
// window and no comparison line.
func TestNilSet(t *testing.T) {
	var s *Set
	if a := s.App("web"); a != nil {
		t.Errorf("App of a nil set = %v", a)
	}
	if w := s.Swapped("web", 1, 2); w != 0 {
		t.Errorf("Swapped of a nil set = %s", w)
	}
	if c := s.Comparison("web"); c != "" {
		t.Errorf("Comparison of a nil set = %q", c)
	}
}
