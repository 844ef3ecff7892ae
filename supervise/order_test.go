package supervise

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/status"
)

// b runs after a: it starts once a is running (a process app is running
// after 1 s) and stops before a is sent TERM; c, unordered, starts at once;
// d (autostart = false) does not start.
func TestManagerAfterOrder(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "stops")
	cmd := func(name string) string {
		return `["/bin/sh", "-c", "trap 'echo ` + name + ` >> ` + log + `; exit 0' TERM; while :; do sleep 0.05; done"]`
	}
	m := realManager(t, `
[app.b]
allow_root = true
kind = "process"
start_settle = "100ms"
command = `+cmd("b")+`
after = ["a"]

[app.a]
allow_root = true
kind = "process"
start_settle = "500ms"
command = `+cmd("a")+`

[app.c]
allow_root = true
kind = "process"
start_settle = "100ms"
command = `+cmd("c")+`


[app.d]
allow_root = true
kind = "process"
start_settle = "100ms"
command = ["/bin/sleep", "3600"]
autostart = false
`)
	ctx := context.Background()
	m.Start(ctx)
	stopped := false
	defer func() {
		if !stopped {
			_ = m.Stop(ctx) // the test failed; end the processes anyway
		}
	}()
	waitAll(t, m, 30*time.Second, "settled", func(s status.AppSnapshot) bool { return s.Name == "d" || s.State == status.Running })
	snaps := map[string]status.AppSnapshot{}
	for _, s := range m.Snapshots() {
		snaps[s.Name] = s
	}
	a, b, c, d := snaps["a"], snaps["b"], snaps["c"], snaps["d"]
	t.Logf("started: a %s, b %s (+%v), c %s", a.Started.Format("15:04:05.000"), b.Started.Format("15:04:05.000"), b.Started.Sub(a.Started).Round(time.Millisecond), c.Started.Format("15:04:05.000"))
	if b.Started.Sub(a.Started) < 500*time.Millisecond {
		t.Errorf("b started %v after a, want after a was running (its start_settle, 500 ms)", b.Started.Sub(a.Started))
	}
	if !c.Started.Before(b.Started) {
		t.Errorf("c (unordered) started at %v, a at %v, b at %v: want c beside a, before b", c.Started, a.Started, b.Started)
	}
	if d.State != status.Stopped || d.Attempted || d.Wanted {
		t.Errorf("d (autostart = false): %s attempted %v wanted %v", d.State, d.Attempted, d.Wanted)
	}
	if r := m.Readiness(); !r.Started || !r.Serving {
		t.Errorf("readiness with d never started = %+v, want started and serving", r)
	}
	stopped = true
	if err := m.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	order := strings.Fields(string(data))
	if ia, ib := index(order, "a"), index(order, "b"); ia < 0 || ib < 0 || ib > ia {
		t.Errorf("stop order %v: want b before a", order)
	}
}

func index(list []string, s string) int {
	for i, e := range list {
		if e == s {
			return i
		}
	}
	return -1
}
