package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
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

// pids are the processes an upgrade must not touch.
type pids struct {
	Supervisor, Web, API, Worker int
}

func currentPIDs(t testing.TB, s *sup, st *control.StatusResponse) pids {
	t.Helper()
	return pids{Supervisor: st.Supervisor.PID, Web: e2e.FindApp(t, st, "web").MasterPID, API: e2e.FindApp(t, st, "api").MasterPID, Worker: e2e.FindApp(t, st, "worker").MasterPID}
}

// checkSupctl runs `supctl status --json` and `supctl version` and checks
// that both work and report version and pid.
func checkSupctl(t *testing.T, s *sup, version string) {
	t.Helper()
	out, code := s.SupctlRun("status", "--json")
	if code != 0 {
		t.Fatalf("supctl status: exit %d: %s", code, out)
	}
	var st control.StatusResponse
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("supctl status --json: %v: %s", err, out)
	}
	if st.Supervisor.Version != version || st.Supervisor.PID != s.PID() {
		t.Errorf("supctl status: supervisor %s pid %d, want %s pid %d", st.Supervisor.Version, st.Supervisor.PID, version, s.PID())
	}
	// supctl version prints its own version, then the supervisor's.
	out, code = s.SupctlRun("version")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	want := fmt.Sprintf("supervisor %s (pid %d) on %s", version, s.PID(), s.Socket)
	if code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[0], "supctl ") || lines[1] != want {
		t.Errorf("supctl version: exit %d %q, want \"supctl VERSION\" and %q", code, out, want)
	}
}

// checkSupervisorFDs fails the test if the supervisor still holds a
// hand-over memfd, and returns its number of open descriptors.
func checkSupervisorFDs(t *testing.T, s *sup) int {
	t.Helper()
	fds, err := testenv.FDs(s.PID())
	if err != nil {
		t.Fatal(err)
	}
	if m := handoverMemfds(fds); len(m) > 0 {
		t.Errorf("supervisor still holds the hand-over state: %v", m)
	}
	return len(fds)
}

// upgradesUnderLoad is how many upgrades TestUpgradeUnderLoad makes in a row:
// each direction (v1 -> v2, v2 -> v1) three times.
const upgradesUnderLoad = 6

// TestUpgradeUnderLoad upgrades the supervisor upgradesUnderLoad times in a
// row, v1 and v2 alternately, while 16 connections load a Gunicorn app, then tries a binary
// that does not even start. Every upgrade keeps the supervisor's PID and
// every app process; no request fails; the version flips; supctl works after
// each; the last, broken binary is refused and changes nothing; once stopped,
// nothing is left.
//
// The supervisor runs with GOGC=1: a collection at nearly every allocation
// makes a finalizer that closes a descriptor still in use (an *os.File left
// on the hand-over memfd would close whatever reuses its number, such as the
// control socket) strike within a few upgrades instead of once in a while.
func TestUpgradeUnderLoad(t *testing.T) {
	s := startSup(t, baseConfig, "GOGC=1")
	st := s.WaitRunning(90*time.Second, "web", "api", "worker")
	want := currentPIDs(t, s, st)
	if want.Supervisor != s.PID() {
		t.Fatalf("status pid %d, started pid %d", want.Supervisor, s.PID())
	}
	addr := e2e.FindApp(t, st, "web").Listeners[0].Bound
	testenv.WaitFor(t, 30*time.Second, "web answering", func() bool {
		code, body, err := testenv.Get(addr, "/")
		return err == nil && code == 200 && body == "version=1\n"
	})
	checkSupctl(t, s, "v1")
	fds0 := checkSupervisorFDs(t, s)
	t.Logf("start: supervisor pid %d (v1, %d fds), web master %d, api master %d, worker %d", want.Supervisor, fds0, want.Web, want.API, want.Worker)

	load := e2e.StartLoad("tcp", addr, "/", 16)
	stopped := false
	defer func() {
		if !stopped {
			load.Stop()
		}
	}()
	testenv.WaitFor(t, 30*time.Second, "load running", func() bool { return load.Snapshot().OK > 200 })

	var took []time.Duration
	version := "v1"
	for i := 1; i <= upgradesUnderLoad; i++ {
		next, bin := "v2", s.v2
		if version == "v2" {
			next, bin = "v1", s.v1
		}
		s.installFile(bin)
		before := load.Snapshot()
		r := s.Ctl("upgrade")
		out, code, d := r.Out, r.Code, r.Took
		if code != 0 {
			t.Fatalf("upgrade %d (%s -> %s): supctl exit %d:\n%s", i, version, next, code, out)
		}
		took = append(took, d)
		if i == 1 {
			t.Logf("supctl upgrade output (phases):\n%s", out)
		}
		st := s.Status()
		got := currentPIDs(t, s, st)
		if got != want {
			t.Errorf("upgrade %d: pids %+v, want %+v", i, got, want)
		}
		if st.Supervisor.Version != next || st.Supervisor.Upgrades != i || st.Supervisor.LastUpgrade != fmt.Sprintf("ok: %s -> %s", version, next) {
			t.Errorf("upgrade %d: status version %q upgrades %d last %q; want %s, %d, \"ok: %s -> %s\"", i, st.Supervisor.Version, st.Supervisor.Upgrades, st.Supervisor.LastUpgrade, next, i, version, next)
		}
		for _, name := range []string{"web", "api", "worker"} {
			if a := e2e.FindApp(t, st, name); a.State != control.StateRunning || a.Restarts != 0 {
				t.Errorf("upgrade %d: app %s %s with %d restarts", i, name, a.State, a.Restarts)
			}
		}
		checkSupctl(t, s, next)
		fds := checkSupervisorFDs(t, s)
		// Keep the load on this image for a while before the next upgrade.
		n := load.Snapshot().OK
		testenv.WaitFor(t, 30*time.Second, "load served after the upgrade", func() bool { return load.Snapshot().OK > n+200 })
		after := load.Snapshot()
		t.Logf("upgrade %2d: %s -> %s: supctl exit 0 in %s (%q); pid %d; web %d api %d worker %d; supervisor fds %d; load so far ok=%d failed=%d (+%d ok since the upgrade began)",
			i, version, next, d.Round(time.Millisecond), lastLine(out), st.Supervisor.PID, got.Web, got.API, got.Worker, fds, after.OK, after.Failed(), after.OK-before.OK)
		if after.Failed() != 0 {
			t.Errorf("upgrade %d: %d failed requests so far: %v", i, after.Failed(), after.Errors)
		}
		version = next
	}

	// A binary that does not start is refused; nothing changes.
	s.install([]byte("#!/bin/sh\nexit 1\n"))
	r := s.Ctl("upgrade")
	out, code, d := r.Out, r.Code, r.Took
	t.Logf("broken binary (exit 1): supctl exit %d in %s: %s", code, d.Round(time.Millisecond), lastLine(out))
	if code != 1 || !strings.Contains(out, "nothing changed") {
		t.Errorf("upgrade to a broken binary: supctl exit %d, want 1 with \"nothing changed\":\n%s", code, out)
	}
	st = s.Status()
	if got := currentPIDs(t, s, st); got != want || st.Supervisor.Version != version || st.Supervisor.Upgrades != upgradesUnderLoad {
		t.Errorf("after the refused upgrade: pids %+v version %s upgrades %d; want %+v %s %d", got, st.Supervisor.Version, st.Supervisor.Upgrades, want, version, upgradesUnderLoad)
	}
	checkSupctl(t, s, version)
	checkSupervisorFDs(t, s)

	n := load.Snapshot().OK
	testenv.WaitFor(t, 30*time.Second, "load served after the refused upgrade", func() bool { return load.Snapshot().OK > n+200 })
	res := load.Stop()
	stopped = true
	t.Logf("load over the %d upgrades and the refused one: %s", upgradesUnderLoad, res)
	if res.Failed() != 0 || res.Non2xx != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
	if res.Bodies["version=1"] != res.OK {
		t.Errorf("bodies %v: want every answer from the one release", res.Bodies)
	}
	var sum, max time.Duration
	for _, d := range took {
		sum += d
		max = maxDur(max, d)
	}
	t.Logf("supctl upgrade durations: %v (mean %s, max %s)", roundAll(took), (sum / time.Duration(len(took))).Round(time.Millisecond), max.Round(time.Millisecond))

	if code := s.Stop(syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("supervisor exit status %d after SIGTERM, want 0", code)
	}
	testenv.AssertNoLeftovers(t, s.Mark, 10*time.Second)
}

// TestUpgradedSupervisorSupervises upgrades once (by SIGUSR2), then checks
// that the new image still does its job: it reaps and restarts a master
// killed with SIGKILL (status shows signal 9), an app started after the
// upgrade inherits no hand-over descriptor and no other app's socket or
// pipe, and SIGTERM stops everything with exit status 0, every api master
// (its Unix listener steered by rename, adopted across the upgrade)
// included.
func TestUpgradedSupervisorSupervises(t *testing.T) {
	t.Parallel() // no load (see TestMain)
	s := startSup(t, baseConfig)
	st := s.WaitRunning(90*time.Second, "web", "api", "worker")
	want := currentPIDs(t, s, st)

	history := allLogs(t, s)
	s.installFile(s.v2)
	if err := syscall.Kill(s.PID(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "upgrade by SIGUSR2", func() bool {
		if s.Exited() {
			t.Fatalf("supervisor exited (status %d):\n%s", s.ExitStatus(), s.Output())
		}
		st, err := control.NewClient(s.Socket).Status(t.Context(), "")
		return err == nil && st.Supervisor.Upgrades == 1
	})
	checkHistoryKept(t, history, allLogs(t, s))
	st = s.Status()
	if got := currentPIDs(t, s, st); got != want || st.Supervisor.Version != "v2" || st.Supervisor.LastUpgrade != "ok: v1 -> v2" {
		t.Fatalf("after SIGUSR2: pids %+v version %s last %q; want %+v v2 \"ok: v1 -> v2\"", got, st.Supervisor.Version, st.Supervisor.LastUpgrade, want)
	}
	t.Logf("SIGUSR2: %s; pid %d, apps untouched", st.Supervisor.LastUpgrade, st.Supervisor.PID)
	checkAccessPipeKept(t, s.PID(), want.Web)

	// kill -9 the web master: the new image reaps it and starts another.
	if err := syscall.Kill(want.Web, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var web control.AppStatus
	testenv.WaitFor(t, 60*time.Second, "web restarted", func() bool {
		st, err := control.NewClient(s.Socket).Status(t.Context(), "web")
		if err != nil || len(st.Apps) != 1 {
			return false
		}
		web = st.Apps[0]
		return web.State == control.StateRunning && web.MasterPID != 0 && web.MasterPID != want.Web
	})
	if web.Restarts != 1 || web.LastExit == nil || web.LastExit.Signal != int(syscall.SIGKILL) {
		t.Errorf("web after kill -9: restarts %d last exit %+v; want 1 restart, signal 9", web.Restarts, web.LastExit)
	}
	if ppid := parentOf(t, web.MasterPID); ppid != s.PID() {
		t.Errorf("new web master %d has parent %d, want the supervisor %d", web.MasterPID, ppid, s.PID())
	}
	t.Logf("kill -9 web master %d: restarted as %d, restarts %d, last exit %+v", want.Web, web.MasterPID, web.Restarts, web.LastExit)
	addr := web.Listeners[0].Bound
	testenv.WaitFor(t, 30*time.Second, "new web master answering", func() bool {
		code, body, err := testenv.Get(addr, "/")
		return err == nil && code == 200 && body == "version=1\n"
	})

	// Restart api (a Unix socket) twice: each master unlinks the name its
	// socket was bound at when it exits; the new image must have taken over
	// the job of putting it back, or the second master's exit fails.
	sockPath := filepath.Join(s.Dir, "api.sock")
	held := filepath.Join(s.Dir, ".api.sock.held")
	for i := 1; i <= 2; i++ {
		old := e2e.FindApp(t, s.Status(), "api").MasterPID
		if out, code := s.SupctlRun("restart", "api"); code != 0 {
			t.Fatalf("supctl restart api (%d): exit %d: %s", i, code, out)
		}
		var a control.AppStatus
		testenv.WaitFor(t, 60*time.Second, "api restarted", func() bool {
			a = e2e.FindApp(t, s.Status(), "api")
			_, err := os.Stat(fmt.Sprintf("/proc/%d", old))
			return a.State == control.StateRunning && a.MasterPID != old && errors.Is(err, fs.ErrNotExist)
		})
		testenv.WaitFor(t, 30*time.Second, "api answering on "+sockPath, func() bool {
			code, body, err := testenv.GetUnix(sockPath, "/")
			return err == nil && code == 200 && body == "version=1\n"
		})
		// The exited master unlinked the bound name; the supervisor puts it
		// back (else the next master's exit fails before it stops its workers).
		testenv.WaitFor(t, 10*time.Second, "both names of api's socket", func() bool {
			var p, h syscall.Stat_t
			return syscall.Lstat(sockPath, &p) == nil && syscall.Lstat(held, &h) == nil && p.Ino == h.Ino
		})
		t.Logf("api restart %d after the upgrade: master %d -> %d, %s and %s name the socket", i, old, a.MasterPID, sockPath, held)
	}
	for _, l := range strings.Split(s.Output(), "\n") {
		if strings.Contains(l, " api[") && strings.Contains(l, "Traceback") {
			t.Errorf("api failed: %s", l)
		}
	}
	// No stray Gunicorn worker re-parented to the supervisor.
	st = s.Status()
	kids, err := testenv.Children(s.PID())
	if err != nil {
		t.Fatal(err)
	}
	masters := map[int]bool{}
	for _, name := range []string{"web", "api", "worker"} {
		masters[e2e.FindApp(t, st, name).MasterPID] = true
	}
	for _, k := range kids {
		// The upgrade guard stays a few seconds after the new image answered.
		if !masters[k] && !strings.Contains(cmdline(k), " upgrade-guard ") {
			t.Errorf("supervisor child %d is no app's main process: %s", k, cmdline(k))
		}
	}

	// Restart worker too, then look at the descriptors of processes started
	// by the new image.
	if out, code := s.SupctlRun("restart", "worker"); code != 0 {
		t.Fatalf("supctl restart worker: exit %d: %s", code, out)
	}
	st = s.WaitRunning(60*time.Second, "web", "api", "worker")
	worker := e2e.FindApp(t, st, "worker")
	if worker.MasterPID == want.Worker {
		t.Fatalf("worker not restarted (pid %d)", worker.MasterPID)
	}
	web = e2e.FindApp(t, st, "web")
	api := e2e.FindApp(t, st, "api")
	foreign := map[string]string{}
	apiListen, err := listenInode(api.Listeners[0].Bound)
	if err != nil {
		t.Fatal(err)
	}
	foreign[apiListen] = "api's listener"
	for _, a := range []control.AppStatus{web, api} {
		if a.StatsdAddr == "" {
			t.Fatalf("app %s has no statsd bridge", a.Name)
		}
		ino, err := udpInode(a.StatsdAddr)
		if err != nil {
			t.Fatal(err)
		}
		foreign[ino] = a.Name + "'s statsd bridge"
	}
	apiFDs, err := testenv.FDs(api.MasterPID)
	if err != nil {
		t.Fatal(err)
	}
	foreign[apiFDs[1]] = "api's stdout pipe"
	foreign[apiFDs[2]] = "api's stderr pipe"
	webListen, err := listenInode(addr)
	if err != nil {
		t.Fatal(err)
	}
	check := []struct {
		name string
		pid  int
		may  string // the one listener it may hold
	}{{"web master", web.MasterPID, webListen}, {"worker", worker.MasterPID, ""}}
	for _, w := range web.WorkerPIDs {
		check = append(check, struct {
			name string
			pid  int
			may  string
		}{"web worker", w, webListen})
	}
	for _, c := range check {
		fds, err := testenv.FDs(c.pid)
		if err != nil {
			t.Fatal(err)
		}
		if m := handoverMemfds(fds); len(m) > 0 {
			t.Errorf("%s %d holds the hand-over state: %v", c.name, c.pid, m)
		}
		var listeners int
		for fd, target := range fds {
			if why, bad := foreign[target]; bad {
				t.Errorf("%s %d holds %s (fd %d -> %s)", c.name, c.pid, why, fd, target)
			}
			if target == webListen {
				listeners++
			}
		}
		if c.may == "" && listeners > 0 {
			t.Errorf("%s %d holds web's listener", c.name, c.pid)
		}
		t.Logf("%s %d: %d fds, none foreign: %v", c.name, c.pid, len(fds), sortedTargets(fds))
	}
	checkSupervisorFDs(t, s)

	if code := s.Stop(syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("upgraded supervisor exit status %d after SIGTERM, want 0", code)
	}
	testenv.AssertNoLeftovers(t, s.Mark, 10*time.Second)
	for _, p := range []string{sockPath, filepath.Join(s.Dir, ".api.sock.held"), s.Socket} {
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s left behind after the stop (%v)", p, err)
		}
	}
	if out := s.Output(); !strings.Contains(out, "supervisor stopped") {
		t.Errorf("no \"supervisor stopped\" in the output")
	}
	checkAPIExits(t, s.Output())
}

// TestUpgradeRefusesWhatCannotTakeOver tries two upgrades that pass the
// `version` and `check` pre-flight but could not take over once exec'd: a
// script that prints a valid version line and exits 0 for `check` but 1 for
// anything else, and the real v2 with a configuration on disk whose
// listeners no longer match the held ones (the fallback, reading the same
// file, could not take over either). Both must be refused before the exec
// (the dry run, `upgrade-check`): once the process image is replaced nothing
// of the supervisor is left to fall back, and it would exit, orphaning every
// app. After each the supervisor, its version and every app are unchanged,
// and a good upgrade still works.
func TestUpgradeRefusesWhatCannotTakeOver(t *testing.T) {
	t.Parallel() // no load (see TestMain)
	s := startSup(t, baseConfig)
	st := s.WaitRunning(90*time.Second, "web", "api", "worker")
	want := currentPIDs(t, s, st)
	good, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(good), `listen = ["tcp://127.0.0.1:0"]`, `listen = ["tcp://127.0.0.1:0", "tcp://127.0.0.1:0"]`, 1)
	for _, c := range []struct {
		name    string
		install func()
		config  string
		reason  string
	}{
		{"version-only script", func() { s.install(scriptVersionOnly("v9")) }, string(good), "upgrade-check` failed"},
		{"v2 with changed listeners on disk", func() { s.installFile(s.v2) }, changed, "1 listeners handed over, configuration has 2"},
	} {
		c.install()
		if err := os.WriteFile(s.Config, []byte(c.config), 0o644); err != nil {
			t.Fatal(err)
		}
		r := s.Ctl("upgrade")
		out, code, d := r.Out, r.Code, r.Took
		t.Logf("%s: supctl exit %d in %s: %s", c.name, code, d.Round(time.Millisecond), lastLine(out))
		if s.Exited() {
			t.Fatalf("%s: the supervisor died (exit %d): its apps are orphans now\n%s", c.name, s.ExitStatus(), s.Output())
		}
		if code != 1 || !strings.Contains(out, "nothing changed") || !strings.Contains(out, "cannot take over") {
			t.Errorf("%s: supctl upgrade exit %d, want 1 with \"cannot take over ... nothing changed\":\n%s", c.name, code, out)
		}
		if !strings.Contains(out, c.reason) {
			t.Errorf("%s: the refusal does not say %q:\n%s", c.name, c.reason, out)
		}
		st = s.Status()
		if got := currentPIDs(t, s, st); got != want || st.Supervisor.Version != "v1" || st.Supervisor.Upgrades != 0 || st.Supervisor.LastUpgrade != "" {
			t.Errorf("%s: after the refused upgrade: pids %+v version %s upgrades %d last %q; want %+v v1 0 \"\"", c.name, got, st.Supervisor.Version, st.Supervisor.Upgrades, st.Supervisor.LastUpgrade, want)
		}
		checkSupctl(t, s, "v1")
	}
	if err := os.WriteFile(s.Config, good, 0o644); err != nil {
		t.Fatal(err)
	}
	s.installFile(s.v2)
	out, code := s.SupctlRun("upgrade")
	st = s.Status()
	t.Logf("then v2 with the original configuration: supctl exit %d: %s", code, lastLine(out))
	if code != 0 || st.Supervisor.Version != "v2" || currentPIDs(t, s, st) != want {
		t.Errorf("upgrade to v2: exit %d, version %s, pids %+v; want 0, v2, %+v\n%s", code, st.Supervisor.Version, currentPIDs(t, s, st), want, out)
	}
}

// TestUpgradeRollsBack installs a wrapper that runs v2 for every pre-flight
// command but starts it on a configuration it cannot take over with: v2
// re-executes the previous image (v1), which takes over again. supctl
// upgrade exits 1, status says "rolled back", every process is the same, no
// request fails, and the next upgrade picks up the binary at the installed
// path again. The rows fail the take-over before v2 adopts anything
// (listeners that do not match the running ones; a control socket it
// cannot create) and after it adopted the held sockets and their steering
// (web's log file cannot be opened).
func TestUpgradeRollsBack(t *testing.T) {
	for _, tc := range []struct {
		name string
		// bad returns the configuration v2 runs on, from the running one.
		bad func(cfg, dir string) string
	}{
		{"listeners_mismatch", func(cfg, dir string) string {
			return strings.Replace(cfg, `listen = ["tcp://127.0.0.1:0"]`, `listen = ["tcp://127.0.0.1:0", "unix://`+dir+`/web2.sock"]`, 1)
		}},
		{"log_file_unopenable", func(cfg, dir string) string {
			return strings.Replace(cfg, "[app.web]\n", "[app.web]\nlog = \"file\"\nlog_file = \""+dir+"/supervisor.toml/web.log\"\n", 1)
		}},
		{"control_socket_unusable", func(cfg, dir string) string {
			return regexp.MustCompile(`(?m)^control_socket = .*$`).ReplaceAllString(cfg, `control_socket = "`+dir+`/supervisor.toml/ctl.sock"`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) { rollsBack(t, tc.bad) })
	}
}

// rollsBack is one row of TestUpgradeRollsBack.
func rollsBack(t *testing.T, badConfig func(cfg, dir string) string) {
	s := startSup(t, baseConfig)
	st := s.WaitRunning(90*time.Second, "web", "api", "worker")
	want := currentPIDs(t, s, st)
	addr := e2e.FindApp(t, st, "web").Listeners[0].Bound

	bad := filepath.Join(s.Dir, "bad.toml")
	cfg, err := os.ReadFile(s.Config)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bad, []byte(badConfig(string(cfg), s.Dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.install([]byte(fmt.Sprintf("#!/bin/sh\n# run mode starts with -c; every other command is v2's own\nif [ \"$1\" = -c ]; then exec %s -c %s; fi\nexec %s \"$@\"\n", s.v2, bad, s.v2)))

	load := e2e.StartLoad("tcp", addr, "/", 16)
	testenv.WaitFor(t, 30*time.Second, "load running", func() bool { return load.Snapshot().OK > 200 })
	r := s.Ctl("upgrade")
	out, code, d := r.Out, r.Code, r.Took
	t.Logf("wrapper that cannot take over: supctl exit %d in %s:\n%s", code, d.Round(time.Millisecond), out)
	if s.Exited() {
		load.Stop()
		t.Fatalf("the supervisor died (exit %d)\n%s", s.ExitStatus(), s.Output())
	}
	st = s.Status()
	if code != 1 || !strings.HasPrefix(st.Supervisor.LastUpgrade, "rolled back: ") || st.Supervisor.Version != "v1" {
		t.Errorf("supctl exit %d, status version %s last %q; want exit 1, v1, \"rolled back: ...\"", code, st.Supervisor.Version, st.Supervisor.LastUpgrade)
	}
	if got := currentPIDs(t, s, st); got != want {
		t.Errorf("after the rollback: pids %+v, want %+v", got, want)
	}
	checkSupctl(t, s, "v1")
	checkSupervisorFDs(t, s)
	t.Logf("after the rollback: %q, upgrades %d", st.Supervisor.LastUpgrade, st.Supervisor.Upgrades)
	if err := steer.Available(); err == nil {
		if got := e2e.FindApp(t, st, "web").Listeners[0].Steering; got != string(steer.ModeBPF) {
			t.Errorf("web's steering after the rollback: %s, want bpf (the previous image adopts it again)", got)
		}
	}

	// The next upgrade runs what is installed at the supervisor's path.
	s.installFile(s.v2)
	out, code = s.SupctlRun("upgrade")
	st = s.Status()
	t.Logf("then v2 installed: supctl exit %d (%q); status %s %q", code, lastLine(out), st.Supervisor.Version, st.Supervisor.LastUpgrade)
	if code != 0 || st.Supervisor.Version != "v2" || st.Supervisor.LastUpgrade != "ok: v1 -> v2" {
		t.Errorf("upgrade after the rollback: exit %d, version %s, last %q; want 0, v2, \"ok: v1 -> v2\"\n%s", code, st.Supervisor.Version, st.Supervisor.LastUpgrade, out)
	}
	if got := currentPIDs(t, s, st); got != want {
		t.Errorf("after the upgrade: pids %+v, want %+v", got, want)
	}
	n := load.Snapshot().OK
	testenv.WaitFor(t, 30*time.Second, "load served after the upgrades", func() bool { return load.Snapshot().OK > n+200 })
	res := load.Stop()
	t.Logf("load over the rollback and the upgrade: %s", res)
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
}

func parentOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	var state byte
	var ppid int
	if _, err := fmt.Sscanf(s[i+2:], "%c %d", &state, &ppid); err != nil {
		t.Fatalf("parse /proc/%d/stat: %v", pid, err)
	}
	return ppid
}

func sortedTargets(fds map[int]string) []string {
	var out []string
	for fd := 0; len(out) < len(fds) && fd < 1<<16; fd++ {
		if target, ok := fds[fd]; ok {
			out = append(out, fmt.Sprintf("%d:%s", fd, target))
		}
	}
	return out
}

func cmdline(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return err.Error()
	}
	return strings.ReplaceAll(strings.TrimRight(string(b), "\x00"), "\x00", " ")
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return s
}

func maxDur(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

func roundAll(ds []time.Duration) []time.Duration {
	out := make([]time.Duration, len(ds))
	for i, d := range ds {
		out[i] = d.Round(time.Millisecond)
	}
	return out
}

// allLogs returns the lines `supctl logs -n all` prints: every app's lines
// held in memory, interleaved by time, each naming its app.
func allLogs(t *testing.T, s *sup) []string {
	t.Helper()
	out, code := s.SupctlRun("logs", "-n", "all")
	if code != 0 {
		t.Fatalf("supctl logs -n all: exit %d: %s", code, out)
	}
	return strings.Split(strings.TrimSpace(out), "\n")
}

// checkHistoryKept fails the test unless every line of before (at least
// one of each app's) is among after: the history survives an upgrade.
func checkHistoryKept(t *testing.T, before, after []string) {
	t.Helper()
	if len(before) == 0 || before[0] == "" {
		t.Fatal("no log line before the upgrade")
	}
	have := map[string]bool{}
	for _, l := range after {
		have[l] = true
	}
	lost := 0
	for _, l := range before {
		if !have[l] {
			lost++
			t.Errorf("line lost across the upgrade: %s", l)
		}
	}
	t.Logf("log history: %d lines before the upgrade, %d after, %d lost", len(before), len(after), lost)
}

// checkAccessPipeKept checks that the supervisor pid still reads the
// access pipe Gunicorn master holds (the descriptor GUNISUP_ACCESS_FD
// names): the route metrics of a generation survive an upgrade.
func checkAccessPipeKept(t *testing.T, pid, master int) {
	t.Helper()
	env, err := testenv.Environ(master)
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "GUNISUP_ACCESS_FD="); ok {
			fd, _ = strconv.Atoi(v)
		}
	}
	masterFDs, err := testenv.FDs(master)
	if err != nil {
		t.Fatal(err)
	}
	pipe := masterFDs[fd]
	supFDs, err := testenv.FDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	for _, target := range supFDs {
		if target == pipe && strings.HasPrefix(pipe, "pipe:") {
			t.Logf("access pipe %s (master %d fd %d) read by the upgraded supervisor", pipe, master, fd)
			return
		}
	}
	t.Errorf("master %d's access pipe (fd %d -> %q) is not among the upgraded supervisor's descriptors", master, fd, pipe)
}
