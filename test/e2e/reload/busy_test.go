package reload

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// TestReloadBusy: while a deploy waits for its new generation (gated at
// import), a second reload or deploy is refused as busy (exit 1) and the
// first one completes; a reload of a stopped app is refused as not running.
func TestReloadBusy(t *testing.T) {
	w := startWeb(t, webOpts{Releases: versions(3), Gated: []int{1}})
	load := e2e.StartLoad("tcp", w.Addr, "/", 16)
	defer load.Stop()

	first := w.CtlAsync("deploy", "web", w.Dirs[1])
	first.WaitOutput(t, 60*time.Second, "waiting for readiness")
	if st := w.App("web"); !st.Reloading {
		t.Errorf("status during the deploy: reloading=%v, want true", st.Reloading)
	}
	for _, args := range [][]string{{"reload", "web"}, {"reload", "web", "--strategy", "usr2"}, {"deploy", "web", w.Dirs[2]}} {
		r := w.Ctl(args...)
		t.Logf("supctl %s while a deploy runs: exit %d in %v: %s", strings.Join(args, " "), r.Code, r.Took.Round(time.Millisecond), strings.TrimSpace(r.Out))
		if r.Code != 1 || !strings.Contains(r.Out, "busy") || !strings.Contains(r.Out, "in progress") {
			t.Errorf("supctl %s while a deploy runs: exit %d, want 1 saying busy:\n%s", strings.Join(args, " "), r.Code, r.Out)
		}
	}
	w.OpenGate(1)
	r := first.Wait(t, 90*time.Second)
	t.Logf("first deploy: exit %d in %v", r.Code, r.Took.Round(time.Millisecond))
	if r.Code != 0 {
		t.Errorf("the deploy that was running: exit %d:\n%s", r.Code, r.Out)
	}
	if stale := probe(w.Addr, "version=v1\n", 20); len(stale) != 0 {
		t.Errorf("%d of 20 answers are not v1: %v", len(stale), stale)
	}
	res := load.Stop()
	t.Logf("load: %s", res)
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}

	if r := w.Ctl("stop", "web"); r.Code != 0 {
		t.Fatalf("stop: exit %d:\n%s", r.Code, r.Out)
	}
	for _, args := range [][]string{{"reload", "web"}, {"deploy", "web", w.Dirs[2]}} {
		r = w.Ctl(args...)
		t.Logf("supctl %s of a stopped app: exit %d: %s", strings.Join(args, " "), r.Code, strings.TrimSpace(r.Out))
		if r.Code != 1 || !strings.Contains(r.Out, "not running") {
			t.Errorf("supctl %s of a stopped app: exit %d, want 1 saying not running:\n%s", strings.Join(args, " "), r.Code, r.Out)
		}
	}
	if r := w.Ctl("reload", "nosuchapp"); r.Code == 0 || !strings.Contains(r.Out, "nosuchapp") {
		t.Errorf("reload of an unknown app: exit %d:\n%s", r.Code, r.Out)
	} else {
		t.Logf("reload of an unknown app: exit %d: %s", r.Code, strings.TrimSpace(r.Out))
	}
}

// TestSigtermDuringReload: SIGTERM to the supervisor while a reload waits
// for its new generation (gated at import): the supervisor exits 0 and
// leaves no process behind (the harness checks), for both strategies.
func TestSigtermDuringReload(t *testing.T) {
	t.Parallel() // no load (see TestMain)
	for _, strategy := range []string{"swap", "usr2"} {
		t.Run(strategy, func(t *testing.T) {
			w := startWeb(t, webOpts{Strategy: strategy, Releases: versions(2), Gated: []int{1}})
			testenv.PointCurrent(t, w.Current, w.Dirs[1])
			rl := w.CtlAsync("reload", "web")
			if strategy == "swap" {
				rl.WaitOutput(t, 60*time.Second, "waiting for readiness")
			} else {
				// The new master is the old one's child; wait until it has
				// forked its workers (they block at import).
				testenv.WaitFor(t, 60*time.Second, "usr2 master with workers", func() bool {
					tr := w.supervisorTree()
					for _, line := range tr.All {
						if strings.HasPrefix(line, "    ") { // depth 2: a worker of the new master
							return true
						}
					}
					return false
				})
			}
			tr := w.supervisorTree()
			start := time.Now()
			code := w.Stop(syscall.SIGTERM, 60*time.Second)
			took := time.Since(start)
			r := rl.Wait(t, 30*time.Second)
			t.Logf("SIGTERM during a %s reload: supervisor exit %d after %v (tree before: %s); supctl reload exit %d:\n%s",
				strategy, code, took.Round(time.Millisecond), tr, r.Code, r.Out)
			if code != 0 {
				t.Errorf("supervisor exit %d, want 0", code)
			}
			if r.Code == 0 {
				t.Errorf("the interrupted reload reported success")
			}
			if left := testenv.Leftovers(w.Mark); len(left) > 0 {
				t.Logf("right after the exit, marked processes still alive: %v (the harness waits 10 s for them)", left)
			}
		})
	}
}

// TestKill9OldMasterDuringSwap: the serving master is killed with -9 while a
// swap deploy waits for its new generation (gated at import). The held
// socket keeps clients in the backlog until the new generation serves; the
// deploy completes and no request fails.
func TestKill9OldMasterDuringSwap(t *testing.T) {
	w := startWeb(t, webOpts{Releases: versions(2), Gated: []int{1}})
	load := e2e.StartLoad("tcp", w.Addr, "/", 16)
	defer load.Stop()
	testenv.WaitFor(t, 20*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })

	dep := w.CtlAsync("deploy", "web", w.Dirs[1])
	dep.WaitOutput(t, 60*time.Second, "waiting for readiness")
	old := w.App("web")
	oldWorkers := w.supervisorTree().Workers[old.MasterPID]
	if err := syscall.Kill(old.MasterPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	// The old workers are orphans now: the supervisor TERMs them.
	testenv.WaitFor(t, 30*time.Second, "old workers gone", func() bool {
		for _, pid := range oldWorkers {
			if syscall.Kill(pid, 0) == nil {
				if p, err := testenv.ReadStat(pid); err == nil && p.State != 'Z' {
					return false
				}
			}
		}
		return true
	})
	mid := w.App("web")
	t.Logf("kill -9 of master %d during the deploy: %v later its workers %v are gone; status %s, message %q", old.MasterPID,
		time.Since(killed).Round(time.Millisecond), oldWorkers, mid.State, mid.Message)
	before := load.Snapshot()
	w.OpenGate(1)
	r := dep.Wait(t, 90*time.Second)
	after := load.Snapshot()
	stale := probe(w.Addr, "version=v1\n", 20)
	tr, bad := w.oneGeneration(2)
	st := w.App("web")
	res := load.Stop()
	t.Logf("deploy: exit %d in %v:\n%s", r.Code, r.Took.Round(time.Millisecond), r.Out)
	t.Logf("after: %s, state %s gen %d, restarts %d; max latency from the gate opening %v; load %s",
		tr, st.State, st.Generation, st.Restarts, maxLatency(after, len(before.Latencies)).Round(time.Millisecond), res)
	if r.Code != 0 {
		t.Errorf("deploy after the old master died: exit %d", r.Code)
	}
	if len(stale) != 0 {
		t.Errorf("%d of 20 answers are not v1: %v", len(stale), stale)
	}
	if bad != "" {
		t.Error(bad)
	}
	if st.State != control.StateRunning {
		t.Errorf("state %s, want running", st.State)
	}
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
}
