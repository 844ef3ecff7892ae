package metrics

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/status"
)

// BenchmarkScrape20Apps measures one full Gather of a registry watching 20
// apps, each with a real process as master (a sleeping helper) and a real
// TCP listener, plus one Unix listener per fifth app: every scrape scans
// /proc, reads 20 fd tables, 20 TCP_INFO and one sock_diag dump.
func BenchmarkScrape20Apps(b *testing.B) {
	const apps = 20
	snaps := make([]status.AppSnapshot, apps)
	for i := range snaps {
		h := startHelper(b, "sleep")
		fd, addr := listenTCP(b, 128)
		ls := []status.ListenerSnapshot{{Address: "tcp://" + addr, Bound: addr, FD: fd, Network: "tcp", Backlog: 128}}
		if i%5 == 0 {
			ufd, path := listenUnix(b, 128)
			ls = append(ls, status.ListenerSnapshot{Address: "unix://" + path, Bound: path, FD: ufd, Network: "unix", Backlog: 128})
		}
		snaps[i] = status.AppSnapshot{
			Name: fmt.Sprintf("app%02d", i), State: status.Running, Healthy: true,
			MasterPID: h.PID, Started: time.Now(), Listeners: ls,
		}
	}
	m := New(&fixedSource{snaps: snaps}, Options{})
	for i := range apps {
		m.ReloadDone(snaps[i].Name, "ok", time.Second)
		m.HealthChecked(snaps[i].Name, true, time.Millisecond)
		newStatsdSink(snaps[i].Name, m).datagram([]byte("gunicorn.request.status.200:1|c|@1.0\ngunicorn.request.duration:5|ms"))
	}
	// Sanity: every app's tree and listener is seen.
	mfs, err := m.Registry().Gather()
	if err != nil {
		b.Fatal(err)
	}
	seen := map[string]int{}
	for _, mf := range mfs {
		if strings.HasPrefix(mf.GetName(), "supervisor_") {
			seen[mf.GetName()] = len(mf.GetMetric())
		}
	}
	if seen["supervisor_app_processes"] != apps || seen["supervisor_listener_queue_length"] != apps+apps/5 {
		b.Fatalf("series: processes %d, queue_length %d; want %d, %d",
			seen["supervisor_app_processes"], seen["supervisor_listener_queue_length"], apps, apps+apps/5)
	}

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := m.Registry().Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTop50Apps measures one answer of TopHandler (what `supctl top`
// reads each second) over 50 apps, each with a real process as master and
// a real TCP listener, without cgroups: each read stats 50 masters and
// reads their children files, 50 TCP_INFO, and encodes the text.
func BenchmarkTop50Apps(b *testing.B) {
	const apps = 50
	src := &topSource{}
	h := startHelper(b, "tree")
	for i := range apps {
		fd, addr := listenTCP(b, 128)
		src.snaps = append(src.snaps, status.AppSnapshot{
			Name: fmt.Sprintf("app%02d", i), State: status.Running, MasterPID: h.PID,
			Listeners: []status.ListenerSnapshot{{Address: "tcp://" + addr, Bound: addr, FD: fd, Network: "tcp", Backlog: 128}},
		})
	}
	m := New(&fixedSource{}, Options{})
	handler := m.TopHandler(src)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, httptest.NewRequest("GET", "/v1/top", nil))
		if w.Code != 200 {
			b.Fatalf("status %d", w.Code)
		}
	}
}
