package daemon

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
)

// With one crash-looping app and one healthy process app, READY=1 arrives
// once the healthy app is running (a process is ready after 1 s) and the
// crashing one is backing off, within that boot time plus 1 s, and its
// STATUS= names the crashing app. An optional app (required = false) that
// crashes and an app with autostart = false do not hold READY=1 back.
func TestReadyWithCrashLoopingApp(t *testing.T) {
	body := `
[app.healthy]
allow_root = true
kind = "process"
command = ["/bin/sleep", "3600"]

[app.crashy]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "exit 3"]

[app.optional]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "exit 4"]
required = false

[app.manual]
allow_root = true
kind = "process"
command = ["/bin/sleep", "3600"]
autostart = false
`
	n := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", n.path)
	r := startDaemon(t, daemonOpts{HTTP: "127.0.0.1:0", ShutdownTimeout: "20s", Body: body})
	sock, t0 := r.Sock, r.Started

	const boot = time.Second // a process app is ready once it ran 1 s
	var ready string
	for ready == "" {
		msg := n.next()
		if strings.Contains(msg, "READY=1") {
			ready = msg
		}
	}
	readyAt := time.Now()
	st, err := control.NewClient(sock).Status(context.Background(), "healthy")
	if err != nil {
		t.Fatal(err)
	}
	spawned := st.Apps[0].Started
	// The healthy app's boot: from Run to its spawn, then the 1 s a
	// process must run to be ready.
	bootTime := spawned.Sub(t0) + boot
	took := readyAt.Sub(t0)
	t.Logf("READY=1 after %v; the healthy app's boot %v (+1 s = %v): %q", took.Round(time.Millisecond), bootTime.Round(time.Millisecond), (bootTime + time.Second).Round(time.Millisecond), ready)
	if spawned.IsZero() || took > bootTime+time.Second {
		t.Errorf("READY=1 after %v, want within %v", took, bootTime+time.Second)
	}
	if !strings.Contains(ready, "crashy (") || strings.Contains(ready, "optional") || strings.Contains(ready, "manual") || strings.Contains(ready, "healthy (") {
		t.Errorf("STATUS= with READY=1 should name crashy only among the unhealthy: %q", ready)
	}

	// /readyz counts required apps meant to run: crashy keeps it at 503
	// until it is stopped on purpose.
	c := control.NewClient(sock)
	full, err := c.Status(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	readyz := func() (int, string) {
		resp, err := http.Get("http://" + full.Supervisor.HTTP + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := readyz(); code != http.StatusServiceUnavailable || !strings.Contains(body, `"crashy"`) || strings.Contains(body, "optional") || strings.Contains(body, "manual") {
		t.Errorf("/readyz with crashy looping = %d %s, want 503 naming crashy alone", code, body)
	}
	if _, err := c.Act(context.Background(), "stop", "crashy"); err != nil {
		t.Fatal(err)
	}
	if code, body := readyz(); code != http.StatusOK {
		t.Errorf("/readyz with crashy stopped on purpose = %d %s, want 200", code, body)
	}
}
