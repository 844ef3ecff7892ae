package metrics

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/status"
)

// topSource is a TopSource of fixed snapshots and cgroup directories.
type topSource struct {
	fixedSource
	cgroups map[string]string
}

func (s *topSource) Published() []status.AppSnapshot { return s.Snapshots() }
func (s *topSource) CgroupDir(app string) string     { return s.cgroups[app] }

// TestTopHandler: the top series of a running app whose master has a
// child (the master and its worker's stat: two processes' memory, the
// child as a worker), of an app read from a real cgroup (this test's
// own), and of a stopped app (its state and restarts only); the state
// series is the current state's alone, and the bridged request series
// are served too.
func TestTopHandler(t *testing.T) {
	tree := startHelper(t, "tree")
	fd, _ := listenTCP(t, 8)
	src := &topSource{cgroups: map[string]string{}}
	src.set(
		status.AppSnapshot{Name: "web", Kind: "gunicorn", State: status.Running, MasterPID: tree.PID, Restarts: 2,
			Listeners: []status.ListenerSnapshot{{Address: "tcp://127.0.0.1:1", Network: "tcp", FD: fd}}},
		status.AppSnapshot{Name: "idle", State: status.Stopped},
	)
	own, err := proc.OwnCgroup()
	if err == nil {
		src.cgroups["cg"] = own
		src.set(append(src.Snapshots(), status.AppSnapshot{Name: "cg", State: status.Running, MasterPID: tree.PID})...)
	}
	m := New(&fixedSource{}, Options{})
	m.httpRequests.WithLabelValues("web", "200").Add(3)
	h := m.TopHandler(src)
	scrape(t, h, "/", 200) // the second read uses the descriptors the first opened
	body := scrape(t, h, "/", 200)
	for _, want := range []string{
		`supervisor_app_state{app="web",state="running"} 1`,
		`supervisor_app_restarts_total{app="web"} 2`,
		`supervisor_app_workers{app="web"} 1`,
		`supervisor_listener_queue_length{app="web",listener="tcp://127.0.0.1:1"} 0`,
		`supervisor_http_requests_total{app="web",status="200"} 3`,
		`supervisor_app_state{app="idle",state="stopped"} 1`,
		`supervisor_app_cpu_seconds_total{app="web"}`,
		`supervisor_app_resident_memory_bytes{app="web"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s in:\n%s", want, body)
		}
	}
	for _, unwanted := range []string{`state="backoff"`, `supervisor_app_cpu_seconds_total{app="idle"}`, "supervisor_app_open_fds"} {
		if strings.Contains(body, unwanted) {
			t.Errorf("unexpected %s in:\n%s", unwanted, body)
		}
	}
	if _, err := os.Stat(filepath.Join(own, "cpu.stat")); err == nil && !strings.Contains(body, `supervisor_app_cpu_seconds_total{app="cg"}`) {
		t.Errorf("no CPU from the cgroup %s in:\n%s", own, body)
	}
	t.Logf("top series:\n%s", body)
}

// TestParseProcStat: the fields after a command name holding spaces and
// parentheses; a short line is an error.
func TestParseProcStat(t *testing.T) {
	for _, tc := range []struct {
		line      string
		ticks     uint64
		rss       uint64
		zombie, e bool
	}{
		{"42 (gunicorn: master [app]) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 500 1000 250 18446744073709551615", 13, 250, false, false},
		{"43 (a) b) c) Z 42 42 42 0 -1 0 0 0 0 0 1 1 0 0 20 0 1 0 500 0 0 0", 2, 0, true, false},
		{"44 (x) S 1 2 3", 0, 0, false, true},
	} {
		u, err := parseProcStat([]byte(tc.line))
		if (err != nil) != tc.e || err == nil && (u.ticks != tc.ticks || u.rssPages != tc.rss || u.zombie != tc.zombie) {
			t.Errorf("parseProcStat(%q) = %+v, %v; want ticks %d, rss %d, zombie %v, error %v", tc.line, u, err, tc.ticks, tc.rss, tc.zombie, tc.e)
		}
	}
}

// TestTopFilesFollowPid: a kept /proc/PID/stat of a process that exited
// fails to read and is not served stale; a round that does not read it
// closes it.
func TestTopFilesFollowPid(t *testing.T) {
	var f topFiles
	h := startHelper(t, "sleep")
	path := filepath.Join("/proc", strconv.Itoa(h.PID), "stat")
	f.begin()
	if _, err := f.get(path, false); err != nil {
		t.Fatal(err)
	}
	f.end()
	if len(f.fds) != 1 {
		t.Fatalf("%d descriptors kept, want 1", len(f.fds))
	}
	h.Stop()
	f.begin()
	if b, err := f.get(path, false); err == nil {
		t.Errorf("stat of exited pid %d read %q", h.PID, b)
	}
	f.end()
	f.begin()
	f.end()
	if len(f.fds) != 0 {
		t.Errorf("%d descriptors kept after a round without reads, want 0", len(f.fds))
	}
	f.closeAll()
}
