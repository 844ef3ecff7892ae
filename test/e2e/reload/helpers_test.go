package reload

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
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
	// Steering is [app.web] steering ("auto" or "shared"); the default is
	// $E2E_STEERING, else "auto", so that E2E_STEERING=shared runs every
	// test that does not choose with steering off.
	Steering string
	// Gated lists release indexes whose app.py blocks at import until
	// web.OpenGate(i) (a file appears), to hold a reload in a known phase.
	Gated []int
	// KeepPrevious is [app.web.reload] keep_previous (default "0s").
	KeepPrevious string
}

// webTables are the keys and sub-tables of web that every test here sets
// (steering, reload strategy and timeout, health check), after the
// e2e.App defaults.
const webTables = `steering = "%s"

[app.web.reload]
strategy = "%s"
timeout = "%s"
keep_previous = "%s"

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
	o.KeepPrevious = cmp.Or(o.KeepPrevious, "0s")
	if o.Steering == "" {
		o.Steering = cmp.Or(os.Getenv("E2E_STEERING"), "auto")
	}
	w := &web{t: t}
	s := e2e.Start(t, e2e.Options{
		// One Gunicorn app on a held TCP socket, working directory a
		// `current` symlink, an HTTP health check through the probe
		// listener.
		Config: e2e.Config{HTTP: o.HTTP, ShutdownTimeout: "30s", Apps: []e2e.App{{
			Directory: "@DIR@/srv/current", Workers: o.Workers,
			Extra: fmt.Sprintf(webTables, o.Steering, o.Strategy, o.Timeout, o.KeepPrevious, o.HealthyAfter),
		}}}.String(),
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
	procs := map[int]testenv.Stat{}
	kids := map[int][]int{}
	for _, p := range testenv.Procs() {
		procs[p.PID] = p
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
			cmd, _ := testenv.Cmdline(k) // gone meanwhile: ""
			tr.All = append(tr.All, fmt.Sprintf("%s%d %s", strings.Repeat("  ", depth), k, cmd))
			if depth == 0 {
				tr.Children = append(tr.Children, k)
				if strings.Contains(cmd, "gunicorn") {
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
