package steer

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/recovery"
)

// recoverRuns is how many kill -9 recoveries the recovery tests run:
// RECOVER_RUNS, by default 3 (20 for the figures of docs/reliability.md).
func recoverRuns(t *testing.T) int {
	t.Helper()
	v := os.Getenv("RECOVER_RUNS")
	if v == "" {
		return 3
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("RECOVER_RUNS=%q: want a positive count", v)
	}
	return n
}

// recovered waits until the supervisor s, started after a kill -9, runs a
// generation of its own (the orphans' is generation 0) and has drained
// the orphans, then checks that it serves release dir through BPF steering
// and that the link current points at dir. It returns the time the new
// generation serves.
func recovered(t *testing.T, s *e2e.Supervisor, current, dir string) time.Time {
	t.Helper()
	var st control.AppStatus
	testenv.WaitFor(t, 60*time.Second, "a new generation of the last gated release serving", func() bool {
		st = s.App("web")
		return st.State == control.StateRunning && st.Generation >= 1
	})
	at := time.Now()
	testenv.WaitFor(t, 60*time.Second, "the previous supervisor's processes gone, the recovery's reload ended", func() bool {
		return len(outsideTree(s.PID(), testenv.Leftovers(s.Mark))) == 0 && !s.App("web").Reloading
	})
	if st.Release != dir {
		t.Errorf("recovered generation runs %s, want %s (the last gated release)", st.Release, dir)
	}
	if got, err := os.Readlink(current); err != nil || got != dir {
		t.Errorf("%s points at %q (%v), want %s", current, got, err, dir)
	}
	if len(st.Listeners) != 1 || st.Listeners[0].Steering != "bpf" {
		t.Errorf("listeners after recovery: %+v, want one steered by bpf", st.Listeners)
	}
	if out := s.Output(); strings.Contains(out, "Already running") {
		t.Errorf("a generation found a live master's pidfile:\n%s", out)
	}
	return at
}

// waitServingRecorded waits until s's run state names the serving
// generation's master and BPF steering, as it does about a second after a
// start or a reload's commit at the latest.
func waitServingRecorded(t *testing.T, s *e2e.Supervisor) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, "the run state naming the serving master and its steering", func() bool {
		master := s.App("web").MasterPID
		st, err := recovery.ReadRunState(filepath.Join(s.Dir, "run"))
		if err != nil || st == nil {
			return false
		}
		run := st.Apps["web"]
		return run.Serving != nil && run.Serving.Group.PGID == master && len(run.Listeners) == 1 && run.Listeners[0].Steer != nil
	})
}

// outsideTree returns the pids of pids that are not descendants of root.
func outsideTree(root int, pids []int) []int {
	procs := e2e.ProcTable()
	in := map[int]bool{root: true}
	for _, p := range e2e.Descendants(procs, root) {
		in[p] = true
	}
	var out []int
	for _, p := range pids {
		if !in[p] {
			out = append(out, p)
		}
	}
	return out
}

// TestRecoverMidDeploy: under load, `supctl deploy` of a release that
// answers 500 everywhere and takes 3 s to boot; once its generation is
// started (the link points at it, the gate has not passed) the supervisor
// dies by SIGKILL and is started again. The new one points the link back,
// starts the last gated release beside the orphans, switches the steering
// to it once it passes the gate and drains the orphans: no client gets a
// non-2xx answer, and the steering is BPF again. RECOVER_RUNS times; then
// two deploys of the same release, which the restored steering keeps from
// every client until they are rolled back.
func TestRecoverMidDeploy(t *testing.T) {
	a := startApp(t, "tcp", []testenv.Release{{Version: "v0"}, {Version: "v1", Variant: testenv.All500, BootDelay: 3 * time.Second}})
	if st := a.App("web"); len(st.Listeners) != 1 || st.Listeners[0].Steering != "bpf" {
		t.Skipf("no BPF steering here: %+v", st.Listeners)
	}
	load := e2e.StartLoad("tcp", a.Addr, "/", 8)
	defer load.Stop()
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
	sup := a.Supervisor
	runs := recoverRuns(t)
	var took []time.Duration
	for i := range runs {
		waitServingRecorded(t, sup)
		deploy := sup.CtlAsync("deploy", "web", a.Dirs[1])
		testenv.WaitFor(t, 30*time.Second, "the deploy's generation started", func() bool {
			select {
			case <-deploy.Done():
				t.Fatalf("run %d: deploy ended before its generation started:\n%s", i, deploy.Output())
			default:
			}
			return strings.Contains(deploy.Output(), "waiting for readiness")
		})
		if got, err := os.Readlink(a.Current); err != nil || got != a.Dirs[1] {
			t.Fatalf("run %d: %s points at %q (%v) during the deploy, want %s", i, a.Current, got, err, a.Dirs[1])
		}
		sup.Kill9()
		killed := time.Now()
		deploy.Wait(t, 30*time.Second)
		sup = e2e.Restart(t, sup, e2e.Options{})
		took = append(took, recovered(t, sup, a.Current, a.Dirs[0]).Sub(killed))
		if status, body, err := testenv.Get(a.Addr, "/"); err != nil || status != 200 || !strings.Contains(body, "version=v0") {
			t.Errorf("run %d: GET / after recovery: %d %q %v", i, status, body, err)
		}
		if t.Failed() {
			t.Logf("supervisor output:\n%s", sup.Output())
			break
		}
	}
	// Steering came back: deploys of the bad release after the recoveries
	// are rolled back without a client seeing it.
	for i := range 2 {
		if r := sup.CtlAsync("deploy", "web", a.Dirs[1]).Wait(t, 90*time.Second); r.Code != 1 {
			t.Errorf("deploy %d of the 500-ing release after the recoveries: exit %d, want 1:\n%s", i, r.Code, r.Out)
		}
	}
	res := load.Stop()
	t.Logf("%d kill -9 mid-deploy of a 500-ing release booting in 3 s, each recovered, then 2 deploys of it rolled back: %s; new generation serving after the kill: %v", len(took), res, took)
	if res.Failed() != 0 {
		t.Errorf("load across the recoveries: %s", res)
	}
}

// TestRecoverRepeatedly: the supervisor dies by SIGKILL and is started
// again, RECOVER_RUNS times in a row, under load: each new supervisor's
// generation 1 starts beside the orphans (its own pidfile, never a live
// master's: no "Already running"), takes over with BPF steering, and no
// request fails.
func TestRecoverRepeatedly(t *testing.T) {
	a := startApp(t, "tcp", []testenv.Release{{Version: "v0"}})
	if st := a.App("web"); len(st.Listeners) != 1 || st.Listeners[0].Steering != "bpf" {
		t.Skipf("no BPF steering here: %+v", st.Listeners)
	}
	load := e2e.StartLoad("tcp", a.Addr, "/", 8)
	defer load.Stop()
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
	sup := a.Supervisor
	runs := recoverRuns(t)
	var took []time.Duration
	for i := range runs {
		waitServingRecorded(t, sup)
		sup.Kill9()
		killed := time.Now()
		sup = e2e.Restart(t, sup, e2e.Options{})
		took = append(took, recovered(t, sup, a.Current, a.Dirs[0]).Sub(killed))
		if g := sup.App("web").Generation; g != 1 {
			t.Errorf("run %d: generation %d serves, want 1", i, g)
		}
		if t.Failed() {
			t.Logf("supervisor output:\n%s", sup.Output())
			break
		}
	}
	res := load.Stop()
	t.Logf("%d plain kill -9 recoveries: %s; new generation serving after the kill: %v", len(took), res, took)
	if res.Failed() != 0 {
		t.Errorf("load across the recoveries: %s", res)
	}
}

// TestRecoverKilledDuringRecovery: the supervisor dies by SIGKILL mid-deploy
// of the 500-ing release, and its successor dies too while its own new
// generation is being checked. The third finds the record its predecessor
// left (the orphans it tracked still serving, its unchecked generation in
// its cgroup) and recovers as the second would have: no non-2xx, the
// first release serving, `current` pointing at it, steering BPF.
func TestRecoverKilledDuringRecovery(t *testing.T) {
	a := startApp(t, "tcp", []testenv.Release{{Version: "v0"}, {Version: "v1", Variant: testenv.All500, BootDelay: 3 * time.Second}})
	if st := a.App("web"); len(st.Listeners) != 1 || st.Listeners[0].Steering != "bpf" {
		t.Skipf("no BPF steering here: %+v", st.Listeners)
	}
	load := e2e.StartLoad("tcp", a.Addr, "/", 8)
	defer load.Stop()
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
	waitServingRecorded(t, a.Supervisor)
	deploy := a.CtlAsync("deploy", "web", a.Dirs[1])
	deploy.WaitOutput(t, 30*time.Second, "waiting for readiness")
	a.Kill9()
	deploy.Wait(t, 30*time.Second)
	second := e2e.Restart(t, a.Supervisor, e2e.Options{})
	second.WaitOutput("waiting for readiness", 30*time.Second)
	second.Kill9()
	third := e2e.Restart(t, second, e2e.Options{})
	recovered(t, third, a.Current, a.Dirs[0])
	res := load.Stop()
	t.Logf("kill -9 mid-deploy, then of the successor mid-recovery: %s", res)
	if res.Failed() != 0 {
		t.Errorf("load across both recoveries: %s\nthird supervisor:\n%s", res, third.Output())
	}
}
