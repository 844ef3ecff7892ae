package metrics

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/status"
)

// TestGunicornStatsd runs Debian's Gunicorn 20.1.0 on a socket bound here,
// with its statsd stream sent to a bridge, and checks that 200 requests
// become exactly 200 in supervisor_http_requests_total{status="200"}, and
// that the process-tree and queue metrics see the real master and workers.
func TestGunicornStatsd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Gunicorn")
	}
	venv := testenv.Venv(t)
	dir := t.TempDir()
	testenv.WriteRelease(t, dir, testenv.Release{Version: "1", Variant: testenv.OK})

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := l.Close(); err != nil {
			t.Errorf("close listener: %v", err)
		}
	}()
	addr := l.Addr().String()
	// The supervisor's own descriptor: a dup of the listener, kept for the
	// whole test as the supervisor keeps its held sockets.
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Errorf("close listener file: %v", err)
		}
	}()

	src := &fixedSource{}
	m := New(src, Options{})
	bridge, err := NewStatsdBridge("web", m)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := bridge.Close(); err != nil {
			t.Errorf("close bridge: %v", err)
		}
	}()

	markKey, markVal := testenv.MarkEnv(t)
	out := &testenv.SyncBuffer{}
	cmd := exec.Command(filepath.Join(venv, "bin", "gunicorn"),
		"--workers", "2", "--graceful-timeout", "2",
		"--statsd-host", bridge.Addr(), "--statsd-prefix", "shop", "--dogstatsd-tags", "env:test,canary",
		testenv.AppModule)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GUNICORN_FD=3", "GUNICORN_PID=-1", markKey+"="+markVal)
	cmd.ExtraFiles = []*os.File{f}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gunicorn: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Errorf("TERM gunicorn: %v", err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("gunicorn exit: %v\n%s", err, out)
			}
		case <-time.After(30 * time.Second):
			if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
				t.Errorf("kill gunicorn group: %v", err)
			}
			<-exited
			t.Errorf("gunicorn ignored TERM for 30 s\n%s", out)
		}
		testenv.AssertNoLeftovers(t, markVal, 10*time.Second)
	}()

	src.set(status.AppSnapshot{
		Name: "web", State: status.Running, MasterPID: cmd.Process.Pid,
		Listeners: []status.ListenerSnapshot{{Address: "tcp://" + addr, Bound: addr, FD: int(f.Fd()), Network: "tcp", Backlog: 2048}},
	})
	web := map[string]string{"app": "web"}

	// Probe a path the app does not have: probes count as status 404 and
	// leave status 200 to the requests under test.
	testenv.WaitFor(t, 60*time.Second, "gunicorn to answer", func() bool {
		status, _, err := testenv.Get(addr, "/probe-not-found")
		return err == nil && status == http.StatusNotFound
	})

	const requests, clients = 200, 4
	errs := make(chan error, requests)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := c; i < requests; i += clients {
				status, body, err := testenv.Get(addr, "/")
				if err == nil && status != http.StatusOK {
					err = fmt.Errorf("status %d body %q", status, body)
				}
				if err != nil {
					errs <- fmt.Errorf("request %d: %w", i, err)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		t.Fatalf("gunicorn output:\n%s", out)
	}

	// A worker sends a request's datagrams after writing its response:
	// poll until every response is counted, by status, by duration and by
	// gunicorn.requests alike.
	status200 := map[string]string{"app": "web", "status": "200"}
	status404 := map[string]string{"app": "web", "status": "404"}
	testenv.WaitFor(t, 10*time.Second, "every response counted", func() bool {
		ok, _ := sample(t, m.Registry(), "supervisor_http_requests_total", status200)
		probes, _ := sample(t, m.Registry(), "supervisor_http_requests_total", status404)
		d, _ := sample(t, m.Registry(), "supervisor_http_request_duration_seconds", web)
		return ok >= requests && d == ok+probes && bridge.Requests() == ok+probes
	})
	if v, _ := sample(t, m.Registry(), "supervisor_http_requests_total", status200); v != requests {
		t.Errorf("supervisor_http_requests_total{status=\"200\"} = %v, want exactly %d", v, requests)
	}
	if v, ok := sample(t, m.Registry(), "supervisor_statsd_malformed_total", web); ok && v != 0 {
		t.Errorf("malformed statsd lines: %v", v)
	}
	testenv.WaitFor(t, 10*time.Second, "statsd workers gauge 2", func() bool {
		v, _ := sample(t, m.Registry(), "supervisor_app_statsd_workers", web)
		return v == 2
	})
	testenv.WaitFor(t, 10*time.Second, "process tree of master + 2 workers", func() bool {
		v, _ := sample(t, m.Registry(), "supervisor_app_processes", web)
		return v == 3
	})
	if v, ok := sample(t, m.Registry(), "supervisor_app_resident_memory_bytes", web); !ok || v < 10<<20 {
		t.Errorf("resident memory of three Python processes = %v (present %v), want > 10 MiB", v, ok)
	}
	if v, ok := sample(t, m.Registry(), "supervisor_app_cpu_seconds_total", web); !ok || v <= 0 {
		t.Errorf("cpu seconds = %v (present %v), want > 0", v, ok)
	}
	lq := map[string]string{"app": "web", "listener": "tcp://" + addr}
	if v, ok := sample(t, m.Registry(), "supervisor_listener_queue_max", lq); !ok || v != 2048 {
		t.Errorf("queue max after Gunicorn's listen(2048) = %v (present %v), want 2048", v, ok)
	}
	if v, ok := sample(t, m.Registry(), "supervisor_listener_queue_length", lq); !ok || v != 0 {
		t.Errorf("queue length of an idle Gunicorn = %v (present %v), want 0", v, ok)
	}
	if h := histogram(t, m.Registry(), "supervisor_http_request_duration_seconds", web); h != nil {
		t.Logf("request durations: count %d, sum %.4fs", h.GetSampleCount(), h.GetSampleSum())
	}
}
