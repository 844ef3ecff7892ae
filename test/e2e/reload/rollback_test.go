package reload

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/listen/steer"
)

// keepWindow is keep_previous in TestRollbackUnderLoad: long enough for
// the rollback that follows a deploy on a loaded machine, short enough to
// wait out.
const keepWindow = 4 * time.Second

// flipRE finds the steering time supctl rollback prints.
// It prefixes each phase with its time since supctl started (seconds).
var flipRE = regexp.MustCompile(`\[ *([0-9.]+)s\] steered new connections back to .* in ([0-9.]+) ms`)

// TestRollbackUnderLoad: under load (the in-house loader and hey, 16
// connections each) with BPF steering and keep_previous, v2 is deployed
// over v1 and `supctl rollback web` within the window steers back to the
// kept v1 generation (the time from the request to the map update is
// printed): v1 answers again and the link points at it. Then v2 is
// deployed again, the window is waited out (the kept generation stops),
// and rollback redeploys v1 through a gated swap. No client request
// fails throughout.
func TestRollbackUnderLoad(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable here: %v", err)
	}
	w := startWeb(t, webOpts{Releases: versions(2), HealthyAfter: 2, Steering: "auto", KeepPrevious: keepWindow.String()})
	load := e2e.StartLoad("tcp", w.Addr, "/", 16)
	defer load.Stop()
	hey := startHey(t, w.Addr, 15*time.Second)
	testenv.WaitFor(t, 20*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })

	w.deployKept(t, 1)
	seen := w.firstAnswer("version=v0\n")
	r := w.Ctl("rollback", "web")
	m := flipRE.FindStringSubmatch(r.Out)
	if r.Code != 0 || m == nil {
		t.Fatalf("rollback within the window: exit %d, want 0 and the flip time:\n%s", r.Code, r.Out)
	}
	flip, _ := strconv.ParseFloat(m[2], 64)
	t.Logf("rollback within keep_previous: flip %.2f ms (the Manager's request to the steering update), done %ss after supctl started (its clock); v0 on a fresh connection %v after supctl was started; supctl took %v",
		flip, m[1], waitSeen(t, seen).Round(time.Millisecond), r.Took.Round(time.Millisecond))
	w.answers(t, "v0", 0)
	if k := w.App("web").Kept; k != nil {
		t.Errorf("after the rollback: still keeps %+v", k)
	}

	w.deployKept(t, 1)
	testenv.WaitFor(t, keepWindow+30*time.Second, "keep_previous window over", func() bool { return w.App("web").Kept == nil })
	r = w.Ctl("rollback", "web")
	if r.Code != 0 || !strings.Contains(r.Out, "deploying the previous release "+w.Dirs[0]) || !strings.Contains(r.Out, "healthy; switching") {
		t.Fatalf("rollback after the window: exit %d, want a gated deploy of %s:\n%s", r.Code, w.Dirs[0], r.Out)
	}
	t.Logf("rollback after keep_previous: redeployed v0 in %v", r.Took.Round(time.Millisecond))
	w.answers(t, "v0", 0)

	res := load.Stop()
	t.Logf("loader: %s", res)
	if res.Requests < 1000 || res.Failed() > 0 || res.Bodies["version=v0"] == 0 || res.Bodies["version=v1"] == 0 {
		t.Errorf("loader: %d of %d requests failed, bodies %v; want none failed of more than 1000, both versions (errors %v)", res.Failed(), res.Requests, res.Bodies, res.Errors)
	}
	hey.check(t, true)
}

// TestRollbackAfterRestart: the releases that passed the gate outlive a
// clean stop of the supervisor (run_dir/state.json keeps them): started
// again, `supctl rollback web`, with nothing kept, deploys the release
// that served before the current one.
func TestRollbackAfterRestart(t *testing.T) {
	start := time.Now()
	w := startWeb(t, webOpts{Releases: versions(2)})
	t.Logf("started in %v", time.Since(start).Round(time.Millisecond))
	if r := w.Ctl("deploy", "web", w.Dirs[1]); r.Code != 0 {
		t.Fatalf("deploy v1: exit %d:\n%s", r.Code, r.Out)
	}
	w.answers(t, "v1", 1)
	if code := w.Stop(syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Fatalf("clean stop: exit %d", code)
	}
	t.Logf("stopped at %v", time.Since(start).Round(time.Millisecond))
	w.Supervisor = e2e.Restart(t, w.Supervisor, e2e.Options{})
	w.WaitState("web", control.StateRunning, 60*time.Second)
	t.Logf("running again at %v", time.Since(start).Round(time.Millisecond))
	w.Addr = w.Supervisor.Addr("web")
	r := w.Ctl("rollback", "web")
	if r.Code != 0 || !strings.Contains(r.Out, "deploying the previous release "+w.Dirs[0]) {
		t.Fatalf("rollback after a restart: exit %d, want a deploy of %s:\n%s", r.Code, w.Dirs[0], r.Out)
	}
	w.answers(t, "v0", 0)
	t.Logf("rolled back at %v", time.Since(start).Round(time.Millisecond))
}

// firstAnswer polls GET / on fresh connections from now on and reports
// how long after the call one answered want (within a minute).
func (w *web) firstAnswer(want string) <-chan time.Duration {
	start := time.Now()
	out := make(chan time.Duration, 1)
	go func() {
		defer close(out)
		for time.Since(start) < time.Minute {
			if st, body, err := testenv.Get(w.Addr, "/"); err == nil && st == 200 && body == want {
				out <- time.Since(start)
				return
			}
		}
	}()
	return out
}

// waitSeen returns what firstAnswer measured.
func waitSeen(t *testing.T, seen <-chan time.Duration) time.Duration {
	t.Helper()
	d, ok := <-seen
	if !ok {
		t.Fatal("the kept release never answered")
	}
	return d
}

// deployKept deploys release i and checks that it answers while the
// generation it replaced is kept for a rollback.
func (w *web) deployKept(t *testing.T, i int) {
	t.Helper()
	r := w.Ctl("deploy", "web", w.Dirs[i])
	if r.Code != 0 || !strings.Contains(r.Out, "unsteered for a rollback") {
		t.Fatalf("deploy %s: exit %d, want 0 and the previous generation kept:\n%s", w.Dirs[i], r.Code, r.Out)
	}
	st := w.App("web")
	if st.Kept == nil || time.Until(st.Kept.Until) <= 0 {
		t.Fatalf("after the deploy: kept %+v, want the previous generation within its window", st.Kept)
	}
	w.answers(t, "v"+strconv.Itoa(i), i)
}

// answers checks that fresh connections get version and that the link
// points at release i.
func (w *web) answers(t *testing.T, version string, i int) {
	t.Helper()
	if bad := probe(w.Addr, "version="+version+"\n", 20); len(bad) > 0 {
		t.Errorf("want %s on fresh connections, got %v", version, bad)
	}
	if got, err := filepath.EvalSymlinks(w.Current); err != nil || got != w.Dirs[i] {
		t.Errorf("current -> %s (%v), want %s", got, err, w.Dirs[i])
	}
}
