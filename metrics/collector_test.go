package metrics

import (
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/status"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// listenTCP binds a blocking TCP listener on 127.0.0.1:0 with the given
// backlog and returns its descriptor (closed by cleanup) and address.
func listenTCP(tb testing.TB, backlog int) (int, string) {
	tb.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("socket: %v", err)
	}
	tb.Cleanup(func() {
		if err := unix.Close(fd); err != nil {
			tb.Errorf("close listener fd %d: %v", fd, err)
		}
	})
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		tb.Fatalf("bind 127.0.0.1:0: %v", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		tb.Fatalf("listen: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		tb.Fatalf("getsockname: %v", err)
	}
	in4, ok := sa.(*unix.SockaddrInet4)
	if !ok {
		tb.Fatalf("getsockname: unexpected %T", sa)
	}
	return fd, (&net.TCPAddr{IP: net.IP(in4.Addr[:]), Port: in4.Port}).String()
}

// listenUnix binds a blocking Unix stream listener with the given backlog
// and returns its descriptor (closed by cleanup) and path.
func listenUnix(tb testing.TB, backlog int) (int, string) {
	tb.Helper()
	path := filepath.Join(testenv.ShortTempDir(tb), "s.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		tb.Fatalf("socket: %v", err)
	}
	tb.Cleanup(func() {
		if err := unix.Close(fd); err != nil {
			tb.Errorf("close listener fd %d: %v", fd, err)
		}
	})
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		tb.Fatalf("bind %s: %v", path, err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		tb.Fatalf("listen: %v", err)
	}
	return fd, path
}

func TestAppMetrics(t *testing.T) {
	started := time.Unix(1700000000, 500000000)
	tests := []struct {
		name string
		snap status.AppSnapshot
		want map[string]float64 // metric name -> value; NaN-free
		// absent lists metrics that must have no series for the app.
		absent []string
	}{
		{
			name: "running",
			snap: status.AppSnapshot{
				Name: "web", State: status.Running, Started: started, Restarts: 3,
				WorkerPIDs: []int{11, 12}, LastExit: &proc.ExitInfo{Code: -1, Signal: 9},
			},
			want: map[string]float64{
				"supervisor_app_up": 1, "supervisor_app_start_time_seconds": 1700000000.5,
				"supervisor_app_restarts_total": 3, "supervisor_app_workers": 2,
				"supervisor_app_last_exit_code": 137,
			},
		},
		{
			name: "backoff after exit 3",
			snap: status.AppSnapshot{
				Name: "api", State: status.Backoff, Restarts: 1,
				LastExit: &proc.ExitInfo{Code: 3}, LogDropped: 17,
			},
			want: map[string]float64{
				"supervisor_app_up": 0, "supervisor_app_restarts_total": 1,
				"supervisor_app_workers": 0, "supervisor_app_last_exit_code": 3,
				"supervisor_log_dropped_lines_total": 17,
			},
			absent: []string{"supervisor_app_start_time_seconds", "supervisor_app_processes"},
		},
		{
			name: "never started",
			snap: status.AppSnapshot{Name: "idle", State: status.Stopped},
			want: map[string]float64{"supervisor_app_up": 0, "supervisor_app_restarts_total": 0},
			absent: []string{
				"supervisor_app_last_exit_code", "supervisor_app_start_time_seconds",
				"supervisor_app_cpu_seconds_total", "supervisor_app_resident_memory_bytes",
				"supervisor_app_open_fds", "supervisor_app_processes",
			},
		},
		{
			name: "master gone from /proc",
			snap: status.AppSnapshot{Name: "ghost", State: status.Stopping, MasterPID: 1 << 30},
			want: map[string]float64{"supervisor_app_up": 0},
			absent: []string{
				"supervisor_app_cpu_seconds_total", "supervisor_app_resident_memory_bytes",
				"supervisor_app_open_fds", "supervisor_app_processes",
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := New(&fixedSource{snaps: []status.AppSnapshot{tc.snap}}, Options{})
			app := map[string]string{"app": tc.snap.Name}
			for name, want := range tc.want {
				got, ok := sample(t, m.Registry(), name, app)
				if !ok || got != want {
					t.Errorf("%s = %v (present %v), want %v", name, got, ok, want)
				}
			}
			for _, name := range tc.absent {
				if v, ok := sample(t, m.Registry(), name, app); ok {
					t.Errorf("%s present (%v), want absent", name, v)
				}
			}
			for _, st := range status.States {
				got, ok := sample(t, m.Registry(), "supervisor_app_state", map[string]string{"app": tc.snap.Name, "state": st.String()})
				want := boolFloat(st == tc.snap.State)
				if !ok || got != want {
					t.Errorf("app_state{state=%q} = %v (present %v), want %v", st, got, ok, want)
				}
			}
			if v, ok := sample(t, m.Registry(), "supervisor_scrape_errors_total", map[string]string{"source": "procfs"}); ok {
				t.Errorf("scrape errors: %v", v)
			}
		})
	}
}

func TestObserver(t *testing.T) {
	m := New(&fixedSource{}, Options{})
	m.ReloadDone("web", "ok", 1500*time.Millisecond)
	m.ReloadDone("web", "rolled_back", 20*time.Second)
	m.ReloadDone("web", "ok", time.Second)
	m.HealthChecked("web", true, 3*time.Millisecond)
	m.HealthChecked("web", false, 2*time.Second)

	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"supervisor_reload_duration_seconds", map[string]string{"app": "web"}, 3},
		{"supervisor_health_check_duration_seconds", map[string]string{"app": "web"}, 2},
		{"supervisor_health_up", map[string]string{"app": "web"}, 0},
	}
	for _, c := range checks {
		if got, ok := sample(t, m.Registry(), c.name, c.labels); !ok || got != c.want {
			t.Errorf("%s%v = %v (present %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	m.HealthChecked("web", true, time.Millisecond)
	if got, _ := sample(t, m.Registry(), "supervisor_health_up", map[string]string{"app": "web"}); got != 1 {
		t.Errorf("health_up after a passing check = %v, want 1", got)
	}

	m.Forget("web")
	if _, ok := sample(t, m.Registry(), "supervisor_reload_duration_seconds", map[string]string{"app": "web"}); ok {
		t.Error("reload_duration_seconds still present after Forget")
	}
}

// TestReloadsFromFirstScrape: supervisor_reloads_total has a series for
// every result word of every app before any reload (so that increase() sees
// the first rollback), and its values are the snapshot's counts, which a
// self-upgrade hands over.
func TestReloadsFromFirstScrape(t *testing.T) {
	src := &fixedSource{snaps: []status.AppSnapshot{
		{Name: "fresh", State: status.Running},
		{Name: "upgraded", State: status.Running, Reloads: map[string]int{"ok": 4, "rolled_back": 1}},
	}}
	m := New(src, Options{})
	want := map[string]map[reload.Outcome]float64{
		"fresh":    {reload.OutcomeOK: 0, reload.OutcomeRolledBack: 0, reload.OutcomeFailed: 0},
		"upgraded": {reload.OutcomeOK: 4, reload.OutcomeRolledBack: 1, reload.OutcomeFailed: 0},
	}
	for app, byResult := range want {
		for _, o := range reload.Outcomes {
			labels := map[string]string{"app": app, "result": string(o)}
			if got, ok := sample(t, m.Registry(), "supervisor_reloads_total", labels); !ok || got != byResult[o] {
				t.Errorf("reloads_total%v = %v (present %v), want %v", labels, got, ok, byResult[o])
			}
		}
	}
}

func TestProcessTreeMetrics(t *testing.T) {
	h := startHelper(t, "tree")
	src := &fixedSource{snaps: []status.AppSnapshot{{
		Name: "web", State: status.Running, MasterPID: h.PID, WorkerPIDs: []int{h.Reported},
	}}}
	m := New(src, Options{})
	app := map[string]string{"app": "web"}

	if got, ok := sample(t, m.Registry(), "supervisor_app_processes", app); !ok || got != 2 {
		t.Errorf("app_processes = %v (present %v), want 2 (helper %d and its child %d)", got, ok, h.PID, h.Reported)
	}
	if got, ok := sample(t, m.Registry(), "supervisor_app_resident_memory_bytes", app); !ok || got <= 0 {
		t.Errorf("app_resident_memory_bytes = %v (present %v), want > 0", got, ok)
	}
	// Each Go process holds at least stdin, stdout, stderr.
	if got, ok := sample(t, m.Registry(), "supervisor_app_open_fds", app); !ok || got < 6 {
		t.Errorf("app_open_fds = %v (present %v), want >= 6", got, ok)
	}
	if got, ok := sample(t, m.Registry(), "supervisor_app_cpu_seconds_total", app); !ok || got < 0 {
		t.Errorf("app_cpu_seconds_total = %v (present %v), want >= 0", got, ok)
	}

	// The child alone is a tree of one.
	src.set(status.AppSnapshot{Name: "web", State: status.Running, MasterPID: h.Reported})
	if got, ok := sample(t, m.Registry(), "supervisor_app_processes", app); !ok || got != 1 {
		t.Errorf("app_processes rooted at the child = %v (present %v), want 1", got, ok)
	}
}

// queueSeries reads the listener queue gauges of app "web".
func queueSeries(tb testing.TB, m *Metrics, listener string) (length, max float64, ok bool) {
	tb.Helper()
	l := map[string]string{"app": "web", "listener": listener}
	length, ok1 := sample(tb, m.Registry(), "supervisor_listener_queue_length", l)
	max, ok2 := sample(tb, m.Registry(), "supervisor_listener_queue_max", l)
	return length, max, ok1 && ok2
}

func TestListenerQueue(t *testing.T) {
	const backlog, pending = 8, 5
	tests := []struct {
		network string
		listen  func(testing.TB, int) (int, string)
	}{
		{"tcp", listenTCP},
		{"unix", listenUnix},
	}
	for _, tc := range tests {
		t.Run(tc.network, func(t *testing.T) {
			fd, addr := tc.listen(t, backlog)
			name := tc.network + "://" + addr
			src := &fixedSource{snaps: []status.AppSnapshot{{
				Name: "web", State: status.Running,
				Listeners: []status.ListenerSnapshot{{Address: name, Bound: addr, FD: fd, Network: tc.network, Backlog: backlog}},
			}}}
			m := New(src, Options{})

			if l, mx, ok := queueSeries(t, m, name); !ok || l != 0 || mx != backlog {
				t.Fatalf("idle queue: length %v max %v present %v; want 0, %d", l, mx, ok, backlog)
			}
			for i := range pending {
				c, err := net.Dial(tc.network, addr)
				if err != nil {
					t.Fatalf("dial %d: %v", i, err)
				}
				t.Cleanup(func() {
					if err := c.Close(); err != nil {
						t.Errorf("close client %d: %v", i, err)
					}
				})
			}
			// The client's connect returns before the server side has
			// queued the connection: poll.
			testenv.WaitFor(t, 5*time.Second, "accept queue to hold every dialed connection", func() bool {
				l, _, _ := queueSeries(t, m, name)
				return l == pending
			})
			if _, mx, _ := queueSeries(t, m, name); mx != backlog {
				t.Errorf("queue max = %v, want %d", mx, backlog)
			}
			for i := range pending {
				nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
				if err != nil {
					t.Fatalf("accept %d: %v", i, err)
				}
				if err := unix.Close(nfd); err != nil {
					t.Fatalf("close accepted %d: %v", i, err)
				}
			}
			if l, _, ok := queueSeries(t, m, name); !ok || l != 0 {
				t.Errorf("after accepting all: length %v present %v, want 0", l, ok)
			}
			if v, ok := sample(t, m.Registry(), "supervisor_scrape_errors_total", map[string]string{"source": "tcp_info"}); ok {
				t.Errorf("tcp_info errors: %v", v)
			}
			if v, ok := sample(t, m.Registry(), "supervisor_scrape_errors_total", map[string]string{"source": "sock_diag"}); ok {
				t.Errorf("sock_diag errors: %v", v)
			}
		})
	}
}

func TestListenerQueueSkipsUnreadable(t *testing.T) {
	const closedFD = 1 << 20 // above any descriptor this process holds
	f, err := os.CreateTemp(t.TempDir(), "plain")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("close %s: %v", f.Name(), err)
		}
	})
	// A TCP listener reported with a Unix socket's inode gone, etc.: every
	// case must drop the series without counting a scrape error.
	cases := []status.ListenerSnapshot{
		{Address: "tcp://closed", FD: closedFD, Network: "tcp"},
		{Address: "unix://closed", FD: closedFD, Network: "unix"},
		{Address: "tcp://file", FD: int(f.Fd()), Network: "tcp"},
		{Address: "unix://file", FD: int(f.Fd()), Network: "unix"},
	}
	src := &fixedSource{snaps: []status.AppSnapshot{{Name: "web", State: status.Running, Listeners: cases}}}
	m := New(src, Options{})
	mfs, err := m.Registry().Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "supervisor_listener_") || mf.GetName() == "supervisor_scrape_errors_total" {
			t.Errorf("unexpected %s: %v", mf.GetName(), mf.GetMetric())
		}
	}
}

// scrape GETs path from h and returns the body, failing unless the status is want.
func scrape(tb testing.TB, h http.Handler, path string, want int) string {
	tb.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + path)
	if err != nil {
		tb.Fatalf("GET %s: %v", path, err)
	}
	body, err := io.ReadAll(resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatalf("GET %s: read body: %v", path, err)
	}
	if resp.StatusCode != want {
		tb.Fatalf("GET %s: status %d, want %d; body:\n%s", path, resp.StatusCode, want, body)
	}
	return string(body)
}

// goldenSource is the fixture of the golden and promtool tests: two apps,
// one running with a TCP and a Unix listener whose master is this test
// process, one crash-looping. Event and statsd series are fed as well, so
// that every metric family appears.
func goldenMetrics(tb testing.TB) *Metrics {
	tb.Helper()
	tcpFD, tcpAddr := listenTCP(tb, 16)
	unixFD, unixPath := listenUnix(tb, 16)
	src := &fixedSource{snaps: []status.AppSnapshot{
		{
			Name: "web", Kind: "gunicorn", State: status.Running, Healthy: true, HealthChecked: true,
			MasterPID: os.Getpid(), WorkerPIDs: []int{1, 2}, Generation: 2, Started: time.Unix(1700000000, 0),
			Restarts: 1, LastExit: &proc.ExitInfo{Code: 0}, Reloads: map[string]int{"ok": 1},
			WorkersTarget: 3, WorkersRecycled: 4,
			Listeners: []status.ListenerSnapshot{
				{Address: "tcp://127.0.0.1:8000", Bound: tcpAddr, FD: tcpFD, Network: "tcp", Backlog: 16, Steering: "bpf"},
				{Address: "unix:///run/web.sock", Bound: unixPath, FD: unixFD, Network: "unix", Backlog: 16, Steering: "shared"},
			},
		},
		{
			Name: "api", Kind: "gunicorn", State: status.Failed, Restarts: 7, Reloads: map[string]int{"rolled_back": 1},
			LastExit: &proc.ExitInfo{Code: 3},
		},
	}}
	m := New(src, Options{Version: "1.2.3+4.gabc1234"})
	m.ReloadDone("web", "ok", 2*time.Second)
	m.ReloadDone("api", "rolled_back", 30*time.Second)
	m.HealthChecked("web", true, 4*time.Millisecond)
	sink := newStatsdSink("web", m)
	sink.datagram([]byte("gunicorn.requests:1|c|@1.0\ngunicorn.request.status.200:1|c|@1.0\n" +
		"gunicorn.request.duration:12.3|ms\ngunicorn.workers:2|g\ngunicorn.log.error:1|c\nnot a metric\n"))
	return m
}

// exposedShape keeps HELP, TYPE and sample lines without values, and drops
// the go_ and process_ families, whose set depends on the Go version.
func exposedShape(body string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(body, "\n") {
		name := line
		if strings.HasPrefix(line, "# ") {
			f := strings.Fields(line)
			if len(f) < 3 {
				continue
			}
			name = f[2]
		}
		if line == "" || strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") {
			continue
		}
		if !strings.HasPrefix(line, "# ") {
			line = line[:strings.LastIndexByte(line, ' ')]
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}

func TestMetricsGolden(t *testing.T) {
	m := goldenMetrics(t)
	got := exposedShape(scrape(t, m.Handler(nil), "/metrics", http.StatusOK))
	got = strings.ReplaceAll(got, `goversion="`+runtime.Version()+`"`, `goversion="GOVERSION"`)
	path := filepath.Join("testdata", "metrics.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestMetricsGolden -update ./metrics/ to create it)", err)
	}
	if got != string(want) {
		t.Errorf("scrape differs from %s (rerun with -update if intended)\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := testenv.Promtool(t)
	m := goldenMetrics(t)
	body := scrape(t, m.Handler(nil), "/metrics", http.StatusOK)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestFeatureEnabled: SetFeatures exports one supervisor_feature_enabled
// series per feature, 1 for an enabled one and 0 otherwise.
func TestFeatureEnabled(t *testing.T) {
	m := New(&fixedSource{}, Options{})
	m.SetFeatures(map[string]bool{"bpf_steering": true, "sock_diag": false})
	for f, want := range map[string]float64{"bpf_steering": 1, "sock_diag": 0} {
		got, ok := sample(t, m.Registry(), "supervisor_feature_enabled", map[string]string{"feature": f})
		if !ok || got != want {
			t.Errorf("feature_enabled{feature=%q} = %v (present %v), want %v", f, got, ok, want)
		}
	}
}
