package liveconf

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

var head = e2e.Config{}.String()

// app is one Gunicorn app table on a port of its own, with extra lines.
func app(name, extra string) string {
	return "\n[app." + name + "]\nallow_root = true\nvirtualenv = \"@VENV@\"\ndirectory = \"@DIR@/app\"\nwsgi = \"app:app\"\nworkers = 2\nlisten = [\"tcp://127.0.0.1:0\"]\n" + extra
}

// pids is an app's master and worker PIDs, sorted.
func pids(a control.AppStatus) []int {
	out := append([]int{a.MasterPID}, a.WorkerPIDs...)
	slices.Sort(out)
	return out
}

// environ reads one variable of a process's environment.
func environ(t *testing.T, pid int, key string) string {
	t.Helper()
	env, err := testenv.Environ(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}

// TestRereadUpdateUnderLoad is the acceptance test of live configuration:
// one app added, one removed, one whose env changed and one unchanged go
// through `supctl reread` (nothing changes) and `supctl update` under hey
// load on the unchanged and changed apps: exactly those changes happen, no
// request fails, the unchanged app keeps its PIDs. Then a broken file (a
// syntax error; a missing virtualenv) on update and on SIGHUP changes
// nothing and names file:line.
func TestRereadUpdateUnderLoad(t *testing.T) {
	s := e2e.Start(t, e2e.Options{
		Config: head + app("keep", "") + app("envchg", "env = { APP_VERSION = \"1\" }\n") + app("gone", ""),
		Setup: func(dir string) {
			if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
				t.Fatal(err)
			}
			testenv.WriteRelease(t, filepath.Join(dir, "app"), testenv.Release{Version: "1"})
		},
	})
	write := s.WriteConfig
	for _, n := range []string{"keep", "envchg", "gone"} {
		s.WaitState(n, control.StateRunning, 60*time.Second)
	}
	keep, env := s.App("keep"), s.App("envchg")

	next := head + app("keep", "") + app("envchg", "env = { APP_VERSION = \"2\" }\n") + app("new", "")
	write(next)
	out, code := s.SupctlRun("reread")
	want := "keep: unchanged\nenvchg: changed (env): reload\nnew: added\ngone: removed\n"
	if code != 0 || out != want {
		t.Fatalf("reread = %q (exit %d), want %q", out, code, want)
	}
	if a := s.App("envchg"); a.MasterPID != env.MasterPID || s.App("gone").MasterPID == 0 {
		t.Fatalf("reread changed something")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type heyRun struct {
		name string
		res  e2e.Hey
		err  error
	}
	// The load lasts loadFor, about three times what the update takes on
	// a busy machine; the test fails if the update outlasts it.
	const loadFor = 12 * time.Second
	done := make(chan heyRun, 2)
	for _, n := range []string{"keep", "envchg"} {
		url := "http://" + s.Addr(n) + "/"
		go func() {
			res, err := e2e.RunHey(ctx, "-z", loadFor.String(), "-c", "8", url)
			done <- heyRun{n, res, err}
		}()
	}
	start := time.Now()
	out, code = s.SupctlRun("update")
	took := time.Since(start)
	t.Logf("supctl update (exit %d) in %v:\n%s", code, took.Round(time.Millisecond), out)
	if code != 0 {
		t.Fatalf("update exit %d", code)
	}
	if took > loadFor {
		t.Errorf("the update took %v, longer than the load (%v): part of it ran without load", took.Round(time.Millisecond), loadFor)
	}
	for range 2 {
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Logf("hey on %s during the update: %d requests, %d failed, p50 %v p99 %v", r.name, r.res.Requests, r.res.Failed(), r.res.P50, r.res.P99)
		if r.res.Failed() != 0 || r.res.Requests == 0 {
			t.Errorf("%s: %d of %d requests failed: %v %v", r.name, r.res.Failed(), r.res.Requests, r.res.Status, r.res.Errors)
		}
	}
	if a := s.App("keep"); !slices.Equal(pids(a), pids(keep)) {
		t.Errorf("unchanged app's PIDs %v, were %v", pids(a), pids(keep))
	}
	envAfter := s.WaitState("envchg", control.StateRunning, 30*time.Second)
	if envAfter.MasterPID == env.MasterPID || environ(t, envAfter.MasterPID, "APP_VERSION") != "2" {
		t.Errorf("changed app: master %d (was %d), APP_VERSION %q, want a new master with 2", envAfter.MasterPID, env.MasterPID, environ(t, envAfter.MasterPID, "APP_VERSION"))
	}
	s.WaitState("new", control.StateRunning, 60*time.Second)
	st, err := s.Client().Status(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range st.Apps {
		names = append(names, a.Name)
	}
	if !slices.Equal(names, []string{"keep", "envchg", "new"}) {
		t.Errorf("apps after update %v, want keep envchg new", names)
	}
	brokenFiles(t, s, write, next)
}

// fileLine matches an error naming the configuration file and a line.
var fileLine = regexp.MustCompile(`supervisor\.toml:\d+: `)

// brokenFiles: a syntax error and a missing virtualenv, applied by update
// and by SIGHUP, change nothing and name file:line.
func brokenFiles(t *testing.T, s *e2e.Supervisor, write func(string), good string) {
	before := map[string][]int{}
	for _, n := range []string{"keep", "envchg", "new"} {
		before[n] = pids(s.App(n))
	}
	broken := map[string]string{
		"syntax error":       good + "\n[app.oops\n",
		"missing virtualenv": strings.Replace(good, "[app.new]\nallow_root = true\nvirtualenv = \"@VENV@\"", "[app.new]\nallow_root = true\nvirtualenv = \"@DIR@/no-such-venv\"", 1),
	}
	hups := 0
	for name, text := range broken {
		if text == good {
			t.Fatalf("%s: the broken file is the good one (the template changed?)", name)
		}
		write(text)
		out, code := s.SupctlRun("update")
		if code != 2 || !fileLine.MatchString(out) || !strings.Contains(out, "nothing changed") {
			t.Errorf("%s: update = %q (exit %d), want exit 2 naming file:line", name, out, code)
		}
		if err := s.Cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		hups++
		testenv.WaitFor(t, 30*time.Second, "SIGHUP's failure logged", func() bool {
			return strings.Count(s.Output(), "SIGHUP: update failed") >= hups
		})
		logged := s.Output()[strings.LastIndex(s.Output(), "SIGHUP: update failed"):]
		if !fileLine.MatchString(logged) {
			t.Errorf("%s: SIGHUP's error does not name file:line: %s", name, logged)
		}
		for n, p := range before {
			if got := pids(s.App(n)); !slices.Equal(got, p) {
				t.Errorf("%s: app %s PIDs %v, were %v", name, n, got, p)
			}
		}
	}
}
