package core

import (
	"encoding/json"
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
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
)

// recoverConfig serves on a TCP port chosen at the first start (the
// restarted supervisor must keep it: it takes the socket over) and on a Unix
// socket.
var recoverConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{
	{Listen: []string{"tcp://127.0.0.1:0", "unix://@DIR@/web.sock"}},
}}.String()

// TestRecoverAfterKill9UnderLoad: the supervisor dies by SIGKILL under hey
// load (-c 16, 8 s with E2E_FULL=1, else until the orphans are gone) and
// is started again on the same file. The new one takes the orphaned
// master's sockets over, starts its own generation and drains the orphans:
// no request fails, and 10 s after the new generation runs no marked process
// is outside the new supervisor's tree.
func TestRecoverAfterKill9UnderLoad(t *testing.T) {
	first := startWeb(t, recoverConfig)
	before := first.WaitState("web", control.StateRunning, 30*time.Second)
	addr := first.Addr("web")
	waitRunState(t, first, before.MasterPID)

	hey := e2e.StartHey(t, "-c", "16", "http://"+addr+"/")
	unixLoad := e2e.StartLoad("unix", filepath.Join(first.Dir, "web.sock"), "/", 4)
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return unixLoad.Snapshot().OK > 100 })

	oldCgroups := readRunState(t, filepath.Join(first.Dir, "run", recovery.RunStateFile)).Apps["web"].Cgroups
	first.Kill9()
	killed := time.Now()
	second := e2e.Restart(t, first, e2e.Options{})
	after := second.WaitState("web", control.StateRunning, 30*time.Second)
	ready := time.Now()
	if after.MasterPID == before.MasterPID {
		t.Fatalf("the restarted supervisor reports the orphaned master %d as its own", before.MasterPID)
	}
	if got := second.Addr("web"); got != addr {
		t.Errorf("restarted supervisor listens on %s, want the orphan's %s", got, addr)
	}
	sup := second.Cmd.Process.Pid
	var outside []int
	testenv.WaitFor(t, 10*time.Second, "no marked process outside the new supervisor's tree, its cgroups removed", func() bool {
		outside = outsideTree(sup, testenv.Leftovers(second.Mark))
		return len(outside) == 0 && len(presentPaths(oldCgroups)) == 0
	})
	drained := time.Now()
	h, err := hey.Stop(heyFor(8 * time.Second))
	if err != nil {
		t.Errorf("hey: %v", err)
	}
	u := unixLoad.Stop()
	t.Logf("kill -9 of the supervisor under load: hey %d requests, status %v, errors %v; unix loader %s; new generation running %s after the kill, orphans gone %s after that",
		h.Requests, h.Status, h.Errors, u, ready.Sub(killed).Round(time.Millisecond), drained.Sub(ready).Round(time.Millisecond))
	if !strings.Contains(second.Output(), "took over the listening sockets") {
		t.Errorf("the restarted supervisor did not take the orphans' sockets over:\n%s", second.Output())
	}
	if h.Failed() != 0 || h.Requests == 0 {
		t.Errorf("hey: %d of %d requests failed: %v %v", h.Failed(), h.Requests, h.Status, h.Errors)
	}
	if u.Failed() != 0 {
		t.Errorf("unix socket load: %s", u)
	}
	if status, _, err := testenv.GetUnix(filepath.Join(second.Dir, "web.sock"), "/"); err != nil || status != 200 {
		t.Errorf("unix socket after the orphans left: status %d, %v", status, err)
	}
}

// heyFor is how long a recovery test's hey runs at least: full with
// E2E_FULL=1 (hey -z full), else nothing beyond the scenario, which stops
// hey once the recovery it covers has been checked (see e2e.Runs).
func heyFor(full time.Duration) time.Duration {
	return time.Duration(e2e.Runs(int(full), 0))
}

// TestRecoverStaleRunState: the dead predecessor's record names a
// supervisor pid and a process group whose pids now belong to an unrelated
// process (reused), and a group that is gone. The new supervisor starts
// (binding afresh), and leaves the unrelated process alone.
func TestRecoverStaleRunState(t *testing.T) {
	first := startWeb(t, recoverConfig)
	before := first.WaitState("web", control.StateRunning, 30*time.Second)
	waitRunState(t, first, before.MasterPID)
	first.Kill9()
	// The orphans die too (an OOM kill of the whole unit): the record is stale.
	for _, pid := range testenv.Leftovers(first.Mark) {
		_ = syscall.Kill(pid, syscall.SIGKILL) // ESRCH: gone already
	}
	testenv.WaitFor(t, 10*time.Second, "the orphans gone", func() bool { return len(testenv.Leftovers(first.Mark)) == 0 })

	// An unrelated process group leader takes the place of the recorded pids.
	bystander := exec.Command("/bin/sleep", "300")
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = bystander.Process.Kill() // the test's own child; Wait reaps it
		_ = bystander.Wait()
	})
	path := filepath.Join(first.Dir, "run", recovery.RunStateFile)
	st := readRunState(t, path)
	st.PID = bystander.Process.Pid
	run := st.Apps["web"]
	run.Groups = append(run.Groups, recovery.ProcGroup{PGID: bystander.Process.Pid, Leader: 1})
	st.Apps["web"] = run
	if err := recovery.WriteRunState(filepath.Dir(path), st); err != nil {
		t.Fatal(err)
	}

	second := e2e.Restart(t, first, e2e.Options{})
	second.WaitState("web", control.StateRunning, 30*time.Second)
	if strings.Contains(second.Output(), "recovery:") {
		t.Errorf("a stale record was taken for a predecessor's live apps:\n%s", second.Output())
	}
	assertCgroupsGone(t, st.Apps["web"].Cgroups)
	if !proc.Alive(bystander.Process.Pid) {
		t.Errorf("the unrelated process %d named by the stale record was killed", bystander.Process.Pid)
	}
	if status, _, err := testenv.Get(second.Addr("web"), "/"); err != nil || status != 200 {
		t.Errorf("GET after a start over a stale record: %d %v", status, err)
	}
}

// detachConfig's app starts a daemon that leaves its process group (setsid)
// and exits, so it restarts every 2 s; each generation's daemon ends with it.
var detachConfig = e2e.Config{}.String() + `
[app.detach]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "setsid sleep 100002 & sleep 2; exit 0"]
backoff_initial = "100ms"
`

// readOnlyCgroups runs the supervisor in a mount namespace where every
// cgroup2 mount is read-only: it cannot create cgroups there.
var readOnlyCgroups = []string{"unshare", "--mount", "--propagation", "private", "/bin/sh", "-c",
	`for m in $(awk '{for (i = 7; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break }}' /proc/self/mountinfo); do mount -o remount,bind,ro "$m" || exit 1; done; exec "$@"`, "sh"}

// TestStopKillsDetachedDaemons: `supctl stop` ends every process the app
// started, daemons that called setsid included, and status counts them
// meanwhile: through the app's cgroup, and without cgroup access (a
// read-only cgroup mount) through the supervisor's child subreaper and the
// app's mark in their environment.
func TestStopKillsDetachedDaemons(t *testing.T) {
	t.Parallel() // waits on its app's 2 s cycles (see TestMain)
	for _, tc := range []struct {
		name, log string
		wrap      []string
	}{
		{"cgroup", "", nil},
		{"subreaper", "apps run without cgroups", readOnlyCgroups},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := proc.OwnCgroup(); err != nil && tc.wrap == nil {
				t.Skipf("no cgroup v2 here: %v", err)
			}
			s := e2e.Start(t, e2e.Options{Config: detachConfig, Wrap: tc.wrap})
			s.WaitOutput(tc.log, 10*time.Second) // logged before the control socket answers, read from the pipe after
			stopDetached(t, s)
		})
	}
}

// stopDetached waits until the detach app restarted twice and runs one
// daemon (the earlier generations' ended with them), checks status counts
// it, stops the app and waits until none is left.
func stopDetached(t *testing.T, s *e2e.Supervisor) {
	t.Helper()
	var st control.AppStatus
	var daemons []int
	testenv.WaitFor(t, 30*time.Second, "two restarts, one detached sleep", func() bool {
		st = s.App("detach")
		daemons = sleepers("100002")
		return st.Restarts >= 2 && st.State == control.StateRunning && len(daemons) == 1
	})
	if st = s.App("detach"); st.Processes < len(daemons) {
		t.Errorf("status counts %d processes, want >= %d (the detached sleeps)", st.Processes, len(daemons))
	}
	out, code := s.SupctlRun("stop", "detach")
	if code != 0 {
		t.Fatalf("supctl stop: exit %d: %s", code, out)
	}
	testenv.WaitFor(t, 10*time.Second, "no sleep 100002 left", func() bool { return len(sleepers("100002")) == 0 })
	t.Logf("after %d restarts, %d detached sleeps (status counted %d processes); none left after supctl stop", st.Restarts, len(daemons), st.Processes)
}

// waitRunState waits until the supervisor's run state names master's group.
func waitRunState(t *testing.T, s *e2e.Supervisor, master int) {
	t.Helper()
	path := filepath.Join(s.Dir, "run", recovery.RunStateFile)
	testenv.WaitFor(t, 10*time.Second, "run state naming master "+path, func() bool {
		st, err := recovery.ReadRunState(filepath.Dir(path))
		return err == nil && st != nil && slices.ContainsFunc(st.Apps["web"].Groups, func(g recovery.ProcGroup) bool { return g.PGID == master })
	})
}

func readRunState(t *testing.T, path string) *recovery.RunState {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var st recovery.RunState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return &st
}

// outsideTree returns the pids of list that are not root's descendants.
func outsideTree(root int, list []int) []int {
	var out []int
	for _, pid := range list {
		p := pid
		for p > 1 && p != root {
			st, err := testenv.ReadStat(p)
			if err != nil {
				break
			}
			p = st.PPID
		}
		if p != root && proc.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// sleepers returns the live `sleep ARG` processes.
func sleepers(arg string) []int {
	var out []int
	for _, p := range testenv.Procs() {
		if cmd, err := testenv.Cmdline(p.PID); err == nil && p.State != 'Z' && cmd == "sleep "+arg {
			out = append(out, p.PID)
		}
	}
	return out
}

// assertCgroupsGone fails the test if any of a predecessor's cgroups (or
// their parent) is still present.
func assertCgroupsGone(t *testing.T, cgroups []string) {
	t.Helper()
	if left := presentPaths(cgroups); len(left) > 0 {
		t.Errorf("the previous supervisor's cgroups %v are still there", left)
	}
}

// presentPaths returns the cgroups and their parents that exist.
func presentPaths(cgroups []string) []string {
	var out []string
	for _, c := range cgroups {
		for _, p := range []string{c, filepath.Dir(c)} {
			if _, err := os.Stat(p); err == nil && !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// brokenRecoverConfig is web and api, two Gunicorn apps on TCP ports
// chosen at the first start; brokenAPI is api's table naming a command that
// does not exist.
var (
	brokenRecoverConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{{}, {Name: "api"}}}.String()
	brokenAPI           = `command = ["@DIR@/gone/gunicorn"]` + "\n"
)

// TestRecoverWithOneBrokenApp: the supervisor of web and api dies by
// SIGKILL under load on web (hey -c 8, 8 s with E2E_FULL=1, else until
// api's failed state has been checked), and api's table is edited to name a deleted
// command. The next start takes both apps over: web gets a new generation
// with no failed request; api is failed, naming the file, key and error,
// and its orphaned master goes on serving on the held socket; supctl
// status exits 3. Then either the configuration is fixed and supctl update gives api a
// new generation, or supctl stop ends the orphan (and start exits 1).
func TestRecoverWithOneBrokenApp(t *testing.T) {
	for _, end := range []string{"update", "stop"} {
		t.Run(end, func(t *testing.T) {
			s, orphan, apiAddr := recoverBroken(t)
			if end == "update" {
				repairBroken(t, s, brokenRecoverConfig, orphan, apiAddr)
			} else {
				stopBroken(t, s, orphan)
			}
		})
	}
}

// recoverBroken runs TestRecoverWithOneBrokenApp up to api's failed state
// and returns the new supervisor, api's orphaned master and api's address.
func recoverBroken(t *testing.T) (*e2e.Supervisor, int, string) {
	first := startWeb(t, brokenRecoverConfig)
	web := first.WaitState("web", control.StateRunning, 30*time.Second)
	api := first.WaitState("api", control.StateRunning, 30*time.Second)
	addr, apiAddr := first.Addr("web"), first.Addr("api")
	waitRunState(t, first, web.MasterPID)
	waitRunStateOf(t, first, "api", api.MasterPID)

	hey := e2e.StartHey(t, "-c", "8", "http://"+addr+"/")
	first.Kill9()
	first.WriteConfig(strings.Replace(brokenRecoverConfig, "[app.api]\n", "[app.api]\n"+brokenAPI, 1))
	second := e2e.Restart(t, first, e2e.Options{})
	if after := second.WaitState("web", control.StateRunning, 30*time.Second); after.MasterPID == web.MasterPID {
		t.Errorf("web: the orphaned master %d was not replaced", web.MasterPID)
	}
	st := second.WaitState("api", control.StateFailed, 30*time.Second)
	for _, want := range []string{second.Config, "app.api.command", "gone/gunicorn"} {
		if !strings.Contains(st.Message, want) {
			t.Errorf("api's message %q does not name %q", st.Message, want)
		}
	}
	if !proc.Alive(api.MasterPID) {
		t.Errorf("api's orphaned master %d was stopped", api.MasterPID)
	}
	if status, _, err := testenv.Get(apiAddr, "/"); err != nil || status != 200 {
		t.Errorf("api's orphan on its held socket: %d %v", status, err)
	}
	if out, code := second.SupctlRun("status"); code != 3 || !strings.Contains(out, "app.api.command") {
		t.Errorf("supctl status: exit %d, want 3 with the reason:\n%s", code, out)
	}
	if text, err := second.Client().Metrics(t.Context()); err != nil || !strings.Contains(string(text), `supervisor_app_state{app="api",state="failed"} 1`) {
		t.Errorf("metrics: %v; api not failed in:\n%s", err, text)
	}
	h, err := hey.Stop(heyFor(8 * time.Second))
	if err != nil {
		t.Errorf("hey: %v", err)
	}
	t.Logf("kill -9 with api broken: hey on web %d requests, status %v, errors %v; api: %s", h.Requests, h.Status, h.Errors, st.Message)
	if h.Failed() != 0 || h.Requests == 0 {
		t.Errorf("hey: %d of %d requests failed: %v %v", h.Failed(), h.Requests, h.Status, h.Errors)
	}
	return second, api.MasterPID, apiAddr
}

// stopBroken stops api, set aside with its orphan serving: the orphan
// ends; a start then exits 1 naming the configuration error.
func stopBroken(t *testing.T, s *e2e.Supervisor, orphan int) {
	t.Helper()
	if out, code := s.SupctlRun("stop", "api"); code != 0 {
		t.Fatalf("supctl stop api: exit %d:\n%s", code, out)
	}
	testenv.WaitFor(t, 30*time.Second, "api's orphaned master gone", func() bool { return !proc.Alive(orphan) })
	if out, code := s.SupctlRun("start", "api"); code != 1 || !strings.Contains(out, "app.api.command") {
		t.Errorf("supctl start api: exit %d, want 1 naming the error:\n%s", code, out)
	}
	if st := s.App("api"); st.State != control.StateFailed || st.MasterPID != 0 {
		t.Errorf("api after stop and start: %s, master %d; want failed, none", st.State, st.MasterPID)
	}
}

// repairBroken writes the fixed configuration, runs supctl update and
// checks api runs a new generation of its own on the same address, the
// orphaned master gone.
func repairBroken(t *testing.T, s *e2e.Supervisor, fixed string, orphan int, addr string) {
	t.Helper()
	s.WriteConfig(fixed)
	began := time.Now()
	out, code := s.SupctlRun("update")
	if code != 0 {
		t.Fatalf("supctl update: exit %d:\n%s", code, out)
	}
	t.Logf("supctl update (%s):\n%s", time.Since(began).Round(time.Millisecond), out)
	st := s.WaitState("api", control.StateRunning, 30*time.Second)
	if st.MasterPID == orphan || st.MasterPID == 0 {
		t.Errorf("api after update: master %d, want a new one (the orphan was %d)", st.MasterPID, orphan)
	}
	testenv.WaitFor(t, 30*time.Second, "api's orphaned master gone", func() bool { return !proc.Alive(orphan) })
	if status, _, err := testenv.Get(addr, "/"); err != nil || status != 200 {
		t.Errorf("api after update: %d %v", status, err)
	}
	if out, code := s.SupctlRun("status"); code != 0 {
		t.Errorf("supctl status after the update: exit %d:\n%s", code, out)
	}
}

// waitRunStateOf waits until the supervisor's run state names master's
// group under app.
func waitRunStateOf(t *testing.T, s *e2e.Supervisor, app string, master int) {
	t.Helper()
	runDir := filepath.Join(s.Dir, "run")
	testenv.WaitFor(t, 10*time.Second, "run state naming "+app+"'s master", func() bool {
		st, err := recovery.ReadRunState(runDir)
		return err == nil && st != nil && slices.ContainsFunc(st.Apps[app].Groups, func(g recovery.ProcGroup) bool { return g.PGID == master })
	})
}
