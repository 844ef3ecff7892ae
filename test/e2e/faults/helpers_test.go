package faults

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// opts describes one row's supervisor.
type opts struct {
	// Apps are the app names (default ["web"]); each gets its own release tree.
	Apps []string
	// HealthyAfter is [app.*.health] healthy_after (default 2).
	HealthyAfter int
	// OwnVenv gives every app a virtualenv of its own at DIR/venv (which the
	// row may delete) instead of the shared one.
	OwnVenv bool
	// Extra lines for every app table (e.g. log settings).
	Extra string
	// Listen overrides the listen address (default tcp://127.0.0.1:0).
	Listen string
	// Setup runs with the test directory before the supervisor starts.
	Setup func(dir string)
	// NoWait starts the supervisor without waiting for its apps.
	NoWait bool
}

// appTables are the reload and health tables of every row's app %[1]s.
const appTables = `
[app.%[1]s.reload]
timeout = "60s"

[app.%[1]s.health]
path = "/healthz"
healthy_after = %[2]d
interval = "200ms"
`

// fx is one row's running supervisor.
type fx struct {
	*e2e.Supervisor
	t    *testing.T
	apps []string
}

// start writes a release v0 per app, starts the supervisor and (unless
// o.NoWait) waits until every app runs healthy and answers version=v0.
func start(t *testing.T, o opts) *fx {
	t.Helper()
	if len(o.Apps) == 0 {
		o.Apps = []string{"web"}
	}
	if o.HealthyAfter == 0 {
		o.HealthyAfter = 2
	}
	if o.Listen == "" {
		o.Listen = "tcp://127.0.0.1:0"
	}
	venv := "@VENV@"
	if o.OwnVenv {
		venv = "@DIR@/venv"
	}
	cfg := e2e.Config{HTTP: "127.0.0.1:0", ShutdownTimeout: "30s"}
	for _, a := range o.Apps {
		cfg.Apps = append(cfg.Apps, e2e.App{Name: a, Virtualenv: venv, Directory: "@DIR@/" + a + "/current",
			Listen: []string{o.Listen}, Extra: o.Extra + fmt.Sprintf(appTables, a, o.HealthyAfter)})
	}
	f := &fx{t: t, apps: o.Apps}
	f.Supervisor = e2e.Start(t, e2e.Options{Config: cfg.String(), NoWait: o.NoWait, Setup: func(dir string) {
		for _, a := range o.Apps {
			writeRelease(t, dir, a, "v0", false)
			testenv.PointCurrent(t, filepath.Join(dir, a, "current"), filepath.Join(dir, a, "releases", "v0"))
		}
		if o.OwnVenv {
			makeVenv(t, filepath.Join(dir, "venv"))
		}
		if o.Setup != nil {
			o.Setup(dir)
		}
	}})
	if o.NoWait {
		return f
	}
	for _, a := range o.Apps {
		f.WaitState(a, control.StateRunning, 60*time.Second)
		f.waitBody(a, "v0")
	}
	return f
}

// waitBody waits until app answers GET / with version=v.
func (f *fx) waitBody(app, v string) {
	f.t.Helper()
	addr := f.Addr(app)
	testenv.WaitFor(f.t, 30*time.Second, app+" answering "+v, func() bool {
		st, body, err := testenv.Get(addr, "/")
		return err == nil && st == 200 && body == "version="+v+"\n"
	})
}

// writeRelease writes DIR/app/releases/v/app.py. A gated release blocks at
// import until the file gatePath exists, then creates bootedPath.
func writeRelease(t *testing.T, dir, app, v string, gated bool) string {
	t.Helper()
	rd := filepath.Join(dir, app, "releases", v)
	if err := os.MkdirAll(rd, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.WriteRelease(t, rd, testenv.Release{Version: v})
	if !gated {
		return rd
	}
	p := filepath.Join(rd, "app.py")
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(src), "\napp = Flask")
	if i < 0 {
		t.Fatalf("no Flask app in %s", p)
	}
	wait := fmt.Sprintf("\nwhile not os.path.exists(%q):  # gated by the test\n    time.sleep(0.02)\nopen(%q, \"a\").close()\n",
		gatePath(rd), bootedPath(rd))
	if err := os.WriteFile(p, []byte(string(src[:i])+wait+string(src[i:])), 0o644); err != nil {
		t.Fatal(err)
	}
	return rd
}

func gatePath(release string) string   { return filepath.Join(release, "gate") }
func bootedPath(release string) string { return filepath.Join(release, "booted") }

// openGate lets a gated release finish importing.
func openGate(t *testing.T, release string) {
	t.Helper()
	if err := os.WriteFile(gatePath(release), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// release writes a new release of app and returns its directory.
func (f *fx) release(app, v string, gated bool) string {
	f.t.Helper()
	return writeRelease(f.t, f.Dir, app, v, gated)
}

// makeVenv makes a virtualenv of its own at dir, as testenv.Venv does.
func makeVenv(t *testing.T, dir string) {
	t.Helper()
	out, err := exec.Command(testenv.SystemPython, "-m", "venv", "--system-site-packages", "--without-pip", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("making virtualenv %s: %v: %s", dir, err, out)
	}
	if err := testenv.WriteGunicornScript(dir); err != nil {
		t.Fatal(err)
	}
}

// deploy starts `supctl deploy app dir` in the background; the test's
// cleanup waits for it.
func (f *fx) deploy(app, dir string) *e2e.AsyncCtl {
	f.t.Helper()
	return f.CtlAsync("deploy", app, dir)
}

// waitOutput waits until a's output contains s (or a exits without it).
func waitOutput(t *testing.T, a *e2e.AsyncCtl, s string) {
	t.Helper()
	testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("supctl output %q", s), func() bool {
		if strings.Contains(a.Output(), s) {
			return true
		}
		select {
		case <-a.Done():
			t.Fatalf("supctl exited without printing %q:\n%s", s, a.Output())
		default:
		}
		return false
	})
}

// statusJSON runs `supctl status --json` and decodes it; exit 3 (an app
// is not running) still prints the whole status, followed by a line that
// names the apps not running (supctl's output is read combined).
func (f *fx) statusJSON() (control.StatusResponse, error) {
	var st control.StatusResponse
	out, code := f.SupctlRun("status", "--json")
	if code != 0 && code != 3 {
		return st, fmt.Errorf("supctl status --json: exit %d: %s", code, out)
	}
	if err := json.NewDecoder(strings.NewReader(out)).Decode(&st); err != nil {
		return st, fmt.Errorf("supctl status --json: %w: %s", err, out)
	}
	return st, nil
}

// tracked reports why the supervisor's processes are not exactly one
// tracked generation per running app and no Gunicorn elsewhere, or "".
// The Gunicorn masters that are children of the supervisor must be the
// master pids of `supctl status --json` (one per running app, none for
// others), and every Gunicorn carrying the test's mark must descend from
// the supervisor.
func (f *fx) tracked() string {
	st, err := f.statusJSON()
	if err != nil {
		return err.Error()
	}
	var want []int
	for _, a := range st.Apps {
		switch {
		case a.Reloading:
			return a.Name + " is still reloading"
		case a.State == control.StateRunning && a.MasterPID > 0:
			want = append(want, a.MasterPID)
		case a.State == control.StateStopped && a.MasterPID == 0:
		default:
			return fmt.Sprintf("%s is %s (master %d)", a.Name, a.State, a.MasterPID)
		}
	}
	slices.Sort(want)
	procs := e2e.ProcTable()
	root := f.Cmd.Process.Pid
	if have := e2e.GunicornChildren(procs, root); !slices.Equal(have, want) {
		return fmt.Sprintf("gunicorn children of the supervisor %v, status masters %v", have, want)
	}
	tree := e2e.Descendants(procs, root)
	for _, pid := range e2e.MarkedGunicorns(procs, f.Mark) {
		if !slices.Contains(tree, pid) {
			return fmt.Sprintf("gunicorn %d (%s) is outside the supervisor's tree", pid, procs[pid].Cmd)
		}
	}
	return ""
}

// assertTracked waits up to 30 s for tracked to hold.
func (f *fx) assertTracked() {
	f.t.Helper()
	why := ""
	ok := poll(30*time.Second, func() bool { why = f.tracked(); return why == "" })
	if !ok {
		f.t.Errorf("processes not tracked: %s", why)
	}
}

// poll calls cond every 50 ms until it is true or timeout passes.
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond) // polling interval
	}
}

// newMaster returns the supervisor's Gunicorn child that is not old, or 0.
func (f *fx) newMaster(old int) int {
	for _, pid := range e2e.GunicornChildren(e2e.ProcTable(), f.Cmd.Process.Pid) {
		if pid != old {
			return pid
		}
	}
	return 0
}

// fds is the supervisor's quiescent fd count: the smallest of 10 samples
// 30 ms apart (a control or health connection may be open at one instant).
func (f *fx) fds() int {
	f.t.Helper()
	best := -1
	for i := 0; i < 10; i++ {
		n, err := e2e.FDCount(f.Cmd.Process.Pid)
		if err != nil {
			f.t.Fatal(err)
		}
		if best < 0 || n < best {
			best = n
		}
		time.Sleep(30 * time.Millisecond) // sampling interval
	}
	return best
}

// assertFDs fails the test when the supervisor's quiescent fd count is more
// than 2 above before (a leak), and logs both.
func (f *fx) assertFDs(before int) {
	f.t.Helper()
	after := f.fds()
	f.t.Logf("supervisor fds: %d before, %d after", before, after)
	if after > before+2 {
		f.t.Errorf("supervisor fds grew from %d to %d", before, after)
	}
}

// load starts an in-process loader of 8 keep-alive connections on app and
// waits until it has 100 answers.
func (f *fx) load(app string) *e2e.Loader {
	f.t.Helper()
	l := e2e.StartLoad("tcp", f.Addr(app), "/", 8)
	f.t.Cleanup(func() { l.Stop() })
	testenv.WaitFor(f.t, 20*time.Second, "load running", func() bool { return l.Snapshot().OK >= 100 })
	return l
}

// more waits until the loader has n more 2xx answers than now.
func more(t *testing.T, l *e2e.Loader, n int) {
	t.Helper()
	base := l.Snapshot().OK
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("%d more answers", n), func() bool { return l.Snapshot().OK >= base+n })
}

// noFailures fails the test when res has more failed requests than allowed.
func noFailures(t *testing.T, res e2e.Result, allowed int) {
	t.Helper()
	t.Logf("load: %s", res)
	if res.Failed() > allowed {
		t.Errorf("%d failed requests (allowed %d): %v", res.Failed(), allowed, res.Errors)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	p, ok := e2e.ProcTable()[pid]
	return ok && p.State != 'Z'
}
