package reload

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// webOpts describes the supervisor and the release tree of one test.
type webOpts struct {
	// Strategy is [app.web.reload] strategy ("swap" or "usr2").
	Strategy string
	// Timeout is [app.web.reload] timeout (default "60s").
	Timeout string
	// HTTP is [supervisor] http ("" disables metrics).
	HTTP string
	// Releases make the release tree; current points at the first.
	Releases []testenv.Release
	// Workers is Gunicorn's --workers (default 2).
	Workers int
	// HealthyAfter is [app.web.health] healthy_after (default 2).
	HealthyAfter int
	// Gated lists release indexes whose app.py blocks at import until
	// web.OpenGate(i) (a file appears), to hold a reload in a known phase.
	Gated []int
}

// webConfig is the supervisor configuration of every test here: one
// Gunicorn app with two workers on a held TCP socket, working directory a
// `current` symlink, an HTTP health check through the probe listener.
const webConfig = `
[supervisor]
control_socket = "@SOCK@"
http = "%s"
run_dir = "@DIR@/run"
shutdown_timeout = "30s"

[app.web]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/srv/current"
wsgi = "app:app"
workers = %d
listen = ["tcp://127.0.0.1:0"]
stop_timeout = "10s"

[app.web.reload]
strategy = "%s"
timeout = "%s"

[app.web.health]
path = "/healthz"
healthy_after = %d
interval = "200ms"
`

// web is a running supervisor serving the app "web" from a release tree.
type web struct {
	*e2e.Supervisor
	t       *testing.T
	Current string
	Dirs    []string
	Addr    string
}

// startWeb writes the release tree, starts the supervisor and waits until
// web runs (healthy) and answers with the first release's version.
func startWeb(t *testing.T, o webOpts) *web {
	t.Helper()
	if o.Timeout == "" {
		o.Timeout = "60s"
	}
	if o.Strategy == "" {
		o.Strategy = "swap"
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.HealthyAfter == 0 {
		o.HealthyAfter = 2
	}
	w := &web{t: t}
	s := e2e.Start(t, e2e.Options{
		Config: fmt.Sprintf(webConfig, o.HTTP, o.Workers, o.Strategy, o.Timeout, o.HealthyAfter),
		Setup: func(dir string) {
			root := filepath.Join(dir, "srv")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			w.Current, w.Dirs = testenv.MakeReleaseTree(t, root, o.Releases...)
			for _, i := range o.Gated {
				gate(t, w.Dirs[i], w.gatePath(i, root))
			}
		},
	})
	w.Supervisor = s
	s.WaitState("web", control.StateRunning, 60*time.Second)
	w.Addr = s.Addr("web")
	want := "version=" + o.Releases[0].Version + "\n"
	testenv.WaitFor(t, 30*time.Second, "first release answering", func() bool {
		st, body, err := testenv.Get(w.Addr, "/")
		return err == nil && st == 200 && body == want
	})
	return w
}

func (w *web) gatePath(i int, root string) string {
	return filepath.Join(root, "gate-"+strconv.Itoa(i))
}

// OpenGate lets release i's app.py finish importing.
func (w *web) OpenGate(i int) {
	w.t.Helper()
	if err := os.WriteFile(w.gatePath(i, filepath.Join(w.Dir, "srv")), nil, 0o644); err != nil {
		w.t.Fatal(err)
	}
}

// gate rewrites dir/app.py so that importing it waits for the file gatePath.
func gate(t *testing.T, dir, gatePath string) {
	t.Helper()
	p := filepath.Join(dir, "app.py")
	src, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(src, []byte("\napp = Flask"))
	if i < 0 {
		t.Fatalf("no Flask app in %s", p)
	}
	wait := fmt.Sprintf("\nwhile not os.path.exists(%q):  # gated by the test\n    time.sleep(0.02)\n", gatePath)
	out := append(append(append([]byte{}, src[:i]...), wait...), src[i:]...)
	if err := os.WriteFile(p, out, 0o644); err != nil {
		t.Fatal(err)
	}
}

// versions returns releases v0..v(n-1), all OK.
func versions(n int) []testenv.Release {
	r := make([]testenv.Release, n)
	for i := range r {
		r[i] = testenv.Release{Version: "v" + strconv.Itoa(i)}
	}
	return r
}

// ctlResult is one finished supctl run.
type ctlResult struct {
	Out  string
	Code int
	Took time.Duration
}

// ctl runs supctl with args.
func (w *web) ctl(args ...string) ctlResult {
	start := time.Now()
	out, code := w.SupctlRun(args...)
	return ctlResult{Out: out, Code: code, Took: time.Since(start)}
}

// asyncCtl is a supctl run in the background whose output can be watched.
type asyncCtl struct {
	cmd  *exec.Cmd
	out  *lockedBuf
	done chan struct{}
	res  ctlResult
}

type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// ctlAsync starts supctl with args; the test's cleanup waits for it.
func (w *web) ctlAsync(args ...string) *asyncCtl {
	w.t.Helper()
	a := &asyncCtl{out: &lockedBuf{}, done: make(chan struct{})}
	a.cmd = exec.Command(w.Supctl, append([]string{"-s", w.Socket}, args...)...)
	a.cmd.Stdout = a.out
	a.cmd.Stderr = a.out
	start := time.Now()
	if err := a.cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	go func() {
		err := a.cmd.Wait()
		a.res = ctlResult{Out: a.out.String(), Code: a.cmd.ProcessState.ExitCode(), Took: time.Since(start)}
		if err != nil && a.res.Code == 0 {
			a.res.Code = -1
		}
		close(a.done)
	}()
	w.t.Cleanup(func() {
		select {
		case <-a.done:
		case <-time.After(90 * time.Second):
			_ = a.cmd.Process.Kill() // the test failed already; do not hang
			<-a.done
		}
	})
	return a
}

// Wait waits up to timeout for the run to end.
func (a *asyncCtl) Wait(t *testing.T, timeout time.Duration) ctlResult {
	t.Helper()
	select {
	case <-a.done:
		return a.res
	case <-time.After(timeout):
		t.Fatalf("supctl %v still running after %s; output so far:\n%s", a.cmd.Args, timeout, a.out.String())
		return ctlResult{}
	}
}

// WaitOutput polls until the output contains s.
func (a *asyncCtl) WaitOutput(t *testing.T, timeout time.Duration, s string) {
	t.Helper()
	testenv.WaitFor(t, timeout, fmt.Sprintf("supctl output to contain %q", s), func() bool {
		return strings.Contains(a.out.String(), s)
	})
}

// probe sends n requests, each on a fresh connection, and returns the
// bodies that are not want (with the error or status when there was one).
func probe(addr, want string, n int) []string {
	var bad []string
	for i := 0; i < n; i++ {
		st, body, err := testenv.Get(addr, "/")
		switch {
		case err != nil:
			bad = append(bad, "error: "+err.Error())
		case st != 200 || body != want:
			bad = append(bad, fmt.Sprintf("%d %q", st, body))
		}
	}
	return bad
}

// proc is one line of the process table.
type proc = e2e.Proc

// procTable reads every process of /proc.
func procTable() map[int]proc { return e2e.ProcTable() }

// tree is the supervisor's process tree at one instant.
type tree struct {
	// Children are the supervisor's live children.
	Children []int
	// Masters are the live children whose command line names gunicorn.
	Masters []int
	// Workers maps each master to its live children.
	Workers map[int][]int
	// Zombies are zombie descendants of the supervisor.
	Zombies []int
	// All are the live descendants, with command lines, for messages.
	All []string
}

func (tr tree) String() string {
	return fmt.Sprintf("masters=%v workers=%v children=%v zombies=%v", tr.Masters, tr.Workers, tr.Children, tr.Zombies)
}

// supervisorTree scans the descendants of the supervisor process.
func (w *web) supervisorTree() tree {
	root := w.Cmd.Process.Pid
	procs := procTable()
	kids := map[int][]int{}
	for _, p := range procs {
		kids[p.PPID] = append(kids[p.PPID], p.PID)
	}
	tr := tree{Workers: map[int][]int{}}
	var walk func(pid, depth int)
	walk = func(pid, depth int) {
		ks := kids[pid]
		sort.Ints(ks)
		for _, k := range ks {
			p := procs[k]
			if p.State == 'Z' {
				tr.Zombies = append(tr.Zombies, k)
				continue
			}
			tr.All = append(tr.All, fmt.Sprintf("%s%d %s", strings.Repeat("  ", depth), k, p.Cmd))
			if depth == 0 {
				tr.Children = append(tr.Children, k)
				if strings.Contains(p.Cmd, "gunicorn") {
					tr.Masters = append(tr.Masters, k)
				}
			}
			if depth == 1 && slices.Contains(tr.Masters, pid) {
				tr.Workers[pid] = append(tr.Workers[pid], k)
			}
			walk(k, depth+1)
		}
	}
	walk(root, 0)
	return tr
}

// oneGeneration reports why the supervisor's tree is not exactly one
// Gunicorn master (the app's current one) with workers workers and no
// zombie, or "" when it is.
func (w *web) oneGeneration(workers int) (tree, string) {
	tr := w.supervisorTree()
	switch {
	case len(tr.Children) != 1 || len(tr.Masters) != 1:
		return tr, fmt.Sprintf("want exactly one child, a gunicorn master; have %s\n%s", tr, strings.Join(tr.All, "\n"))
	case len(tr.Workers[tr.Masters[0]]) != workers:
		return tr, fmt.Sprintf("master %d has %d workers, want %d: %s", tr.Masters[0], len(tr.Workers[tr.Masters[0]]), workers, tr)
	case len(tr.Zombies) != 0:
		return tr, fmt.Sprintf("zombies: %s", tr)
	}
	return tr, ""
}

// procStatus reads fields (in kB or counts) of /proc/PID/status.
func procStatus(pid int, keys ...string) (map[string]int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := map[string]int{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || !slices.Contains(keys, k) {
			continue
		}
		fs := strings.Fields(v)
		if len(fs) == 0 {
			continue
		}
		n, err := strconv.Atoi(fs[0])
		if err != nil {
			return nil, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		out[k] = n
	}
	return out, sc.Err()
}

// fdCount counts /proc/PID/fd.
func fdCount(pid int) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

var listeningRE = regexp.MustCompile(`msg="?Listening on"? address=(127\.0\.0\.1:\d+)`)

// metricsAddr finds the metrics listener's address in the supervisor's log
// (exporter-toolkit logs "Listening on" with the bound address).
func (w *web) metricsAddr() string {
	w.t.Helper()
	var addr string
	testenv.WaitFor(w.t, 20*time.Second, "metrics listener in the log", func() bool {
		if m := listeningRE.FindStringSubmatch(w.Output()); m != nil {
			addr = m[1]
			return true
		}
		return false
	})
	return addr
}

// stats summarises durations: median and max.
func stats(ds []time.Duration) (med, max time.Duration) {
	if len(ds) == 0 {
		return 0, 0
	}
	s := append([]time.Duration(nil), ds...)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)-1]
}

// maxLatency is the largest latency recorded after index from.
func maxLatency(r e2e.Result, from int) time.Duration {
	var m time.Duration
	for _, l := range r.Latencies[min(from, len(r.Latencies)):] {
		m = max(m, l)
	}
	return m
}
