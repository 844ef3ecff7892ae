package faults

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// fault is one row of the table: a fault injected into a running
// supervisor, and the behaviour it must show.
type fault struct {
	name string
	// expect is the behaviour the row asserts, in one sentence.
	expect string
	run    func(t *testing.T)
}

// TestFaults is the fault table. Run one row with
// go test -run 'TestFaults/NAME' ./test/e2e/faults/.
func TestFaults(t *testing.T) {
	rows := []fault{
		{"kill9_master", "the master dies: the held socket queues clients, a new master serves, its pidfile is removed; 0 failed requests", func(t *testing.T) { killMaster(t, false) }},
		{"kill9_usr2_master", "a master promoted by a usr2 reload dies: as kill9_master", func(t *testing.T) { killMaster(t, true) }},
		{"kill9_worker", "a worker dies: Gunicorn forks another; only the request in flight on it may fail (at most 1)", killWorker},
		{"kill9_new_spawned", "the new generation dies before its workers boot: the reload fails (exit 1), the old generation serves on; 0 failed", killNewSpawned},
		{"kill9_new_gated", "the new generation dies booted but not yet healthy enough: the reload fails, the old serves on; 0 failed", killNewGated},
		{"kill9_new_committed", "the new generation dies after the switch (while the old drains): the reload succeeds, the new release is restarted; 0 failed", killNewCommitted},
		{"sigstop_supervisor_5s", "the supervisor is frozen 5 s: the apps keep serving, then it answers again; 0 failed", stopSupervisor},
		{"rlimit_nofile_64_swap", "a swap under RLIMIT_NOFILE 64 succeeds or fails cleanly; the old or new generation serves, no fd leaks; 0 failed",
			func(t *testing.T) { rlimitSwap(t, func(int) int { return 64 }) }},
		{"rlimit_nofile_tight_swap", "a swap with RLIMIT_NOFILE 2 above the fds in use fails cleanly (or succeeds); then a swap works; no fd leak; 0 failed",
			func(t *testing.T) { rlimitSwap(t, func(fds int) int { return fds + 2 }) }},
		{"log_disk_full", "log = file on a full 64 KiB tmpfs: requests keep succeeding, the supervisor stays responsive; 0 failed", logDiskFull},
		{"listen_address_taken", "the listen address is taken at start: exit non-zero naming file:line, no process left", listenTaken},
		{"venv_deleted_before_reload", "the virtualenv is deleted: the reload fails, the old generation serves on; 0 failed", venvDeleted},
		{"config_deleted_before_reload", "the config file is deleted: update fails naming it and changes nothing; a deploy works from the configuration in memory; 0 failed", configDeleted},
		{"reload_x50_at_once", "50 reloads at once: one runs, 49 are answered busy, one generation left, no fd leak", reloads50},
		{"sigterm_mid_reload", "SIGTERM while a reload waits for its new generation: exit 0, the reload reports failure, no process left", termMidReload},
		{"chaos_30s", "restart, stop, start and reload at random for 30 s: one tracked generation per running app, no untracked Gunicorn", func(t *testing.T) { chaos(t, chaosSeed(t), 30*time.Second) }},
		{"kill9_supervisor_restart", "the supervisor is killed and started again: 0 refused connections, no Gunicorn outside its tree 10 s later", killSupervisor},
	}
	for _, r := range rows {
		t.Run(r.name, func(t *testing.T) {
			t.Logf("expect: %s", r.expect)
			start := time.Now()
			r.run(t)
			t.Logf("row took %v", time.Since(start).Round(time.Millisecond))
		})
	}
}

// killMaster kills the master with SIGKILL; after usr2, the one a usr2
// reload promoted (whose pidfile Gunicorn renamed from "<pidfile>.2").
func killMaster(t *testing.T, usr2 bool) {
	f := start(t, opts{})
	if usr2 {
		first := f.App("web").MasterPID
		if r := f.Ctl("reload", "web", "--strategy", "usr2"); r.Code != 0 {
			t.Fatalf("usr2 reload: exit %d:\n%s", r.Code, r.Out)
		}
		testenv.WaitFor(t, 30*time.Second, "the promoted master's pidfile", func() bool {
			st := f.App("web")
			return st.MasterPID != first && len(f.PidfilesNaming(st.MasterPID)) > 0 && len(f.PidfilesNaming(first)) == 0
		})
	}
	before := f.App("web")
	pidfiles := f.PidfilesNaming(before.MasterPID)
	if len(pidfiles) == 0 {
		t.Fatalf("no pidfile under %s/run holds the master's pid %d", f.Dir, before.MasterPID)
	}
	l := f.load("web")
	if err := syscall.Kill(before.MasterPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var after control.AppStatus
	testenv.WaitFor(t, 30*time.Second, "a new master running", func() bool {
		after = f.App("web")
		return after.State == control.StateRunning && after.MasterPID != before.MasterPID && after.Healthy
	})
	t.Logf("new master %d running %v after the kill; restarts %d, last exit %v", after.MasterPID,
		time.Since(killed).Round(time.Millisecond), after.Restarts, after.LastExit)
	// The killed master's pidfile does not stay in run_dir.
	testenv.WaitFor(t, 10*time.Second, "the killed master's pidfile "+pidfiles[0]+" removed", func() bool {
		return len(f.PidfilesNaming(before.MasterPID)) == 0
	})
	more(t, l, 300)
	noFailures(t, l.Stop(), 0)
	if after.Restarts != 1 || after.LastExit == nil || after.LastExit.Signal != int(syscall.SIGKILL) {
		t.Errorf("restarts %d, last exit %v; want 1 restart and signal 9", after.Restarts, after.LastExit)
	}
	f.assertTracked()
}

func killWorker(t *testing.T) {
	f := start(t, opts{})
	before := f.App("web")
	l := f.load("web")
	victim := before.WorkerPIDs[0]
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var after control.AppStatus
	testenv.WaitFor(t, 30*time.Second, "two workers again", func() bool {
		after = f.App("web")
		return len(after.WorkerPIDs) == 2 && !slices.Contains(after.WorkerPIDs, victim) && !alive(victim)
	})
	more(t, l, 300)
	noFailures(t, l.Stop(), 1)
	t.Logf("workers %v -> %v; master %d -> %d, restarts %d", before.WorkerPIDs, after.WorkerPIDs, before.MasterPID, after.MasterPID, after.Restarts)
	if after.MasterPID != before.MasterPID || after.Restarts != before.Restarts {
		t.Errorf("the master changed (%d -> %d, restarts %d): a worker's death must stay inside Gunicorn", before.MasterPID, after.MasterPID, after.Restarts)
	}
	f.assertTracked()
}

// killNewDuring deploys a gated v1, waits for phase, kills the new master
// and checks the reload failed and v0 still serves.
func killNewDuring(t *testing.T, healthyAfter int, phase func(t *testing.T, f *fx, rel string, rl *e2e.AsyncCtl)) {
	f := start(t, opts{HealthyAfter: healthyAfter})
	old := f.App("web")
	rel := f.release("web", "v1", true)
	l := f.load("web")
	rl := f.deploy("web", rel)
	waitOutput(t, rl, "waiting for readiness")
	phase(t, f, rel, rl)
	victim := f.newMaster(old.MasterPID)
	if victim == 0 {
		t.Fatalf("no new generation beside master %d; deploy output:\n%s", old.MasterPID, rl.Output())
	}
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rlRes := rl.Wait(t, 60*time.Second)
	code, took := rlRes.Code, rlRes.Took
	t.Logf("deploy after kill -9 of new master %d: exit %d in %v:\n%s", victim, code, took.Round(time.Millisecond), rl.Output())
	if code != 1 {
		t.Errorf("deploy exit %d; want 1 (failed)", code)
	}
	more(t, l, 300)
	noFailures(t, l.Stop(), 0)
	if n := l.Snapshot().Bodies["version=v1"]; n != 0 {
		t.Errorf("%d requests answered by the uncommitted generation: clients must reach only a committed one", n)
	}
	after := f.App("web")
	if after.MasterPID != old.MasterPID || after.State != control.StateRunning {
		t.Errorf("after the failed reload: master %d state %s; want the old master %d running", after.MasterPID, after.State, old.MasterPID)
	}
	f.waitBody("web", "v0")
	f.assertTracked()
}

func killNewSpawned(t *testing.T) {
	killNewDuring(t, 2, func(*testing.T, *fx, string, *e2e.AsyncCtl) {})
}

func killNewGated(t *testing.T) {
	// healthy_after 25 at 200 ms: about 5 s between boot and the switch.
	killNewDuring(t, 25, func(t *testing.T, f *fx, rel string, rl *e2e.AsyncCtl) {
		openGate(t, rel)
		testenv.WaitFor(t, 30*time.Second, "the new generation booted", func() bool {
			_, err := os.Stat(bootedPath(rel))
			return err == nil
		})
		if strings.Contains(rl.Output(), "switching") {
			t.Fatalf("the reload switched before the gated phase could be hit:\n%s", rl.Output())
		}
	})
}

func killNewCommitted(t *testing.T) {
	f := start(t, opts{})
	old := f.App("web")
	rel := f.release("web", "v1", true)
	l := f.load("web")
	rl := f.deploy("web", rel)
	waitOutput(t, rl, "waiting for readiness")
	victim := f.newMaster(old.MasterPID)
	openGate(t, rel)
	waitOutput(t, rl, "draining")
	if err := syscall.Kill(victim, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	rlRes := rl.Wait(t, 60*time.Second)
	code, took := rlRes.Code, rlRes.Took
	t.Logf("deploy with new master %d killed after the switch: exit %d in %v:\n%s", victim, code, took.Round(time.Millisecond), rl.Output())
	if code != 0 {
		t.Errorf("deploy exit %d; want 0: the new generation was committed before it died", code)
	}
	var after control.AppStatus
	testenv.WaitFor(t, 30*time.Second, "a third master running", func() bool {
		after = f.App("web")
		return after.State == control.StateRunning && after.Healthy && after.MasterPID != victim && after.MasterPID != old.MasterPID
	})
	f.waitBody("web", "v1")
	more(t, l, 300)
	noFailures(t, l.Stop(), 0)
	t.Logf("after: master %d restarts %d last exit %v; bodies %v", after.MasterPID, after.Restarts, after.LastExit, l.Snapshot().Bodies)
	f.assertTracked()
}
