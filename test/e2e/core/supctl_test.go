package core

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// supctlConfig: web (Gunicorn, 2 workers), sleeper (a process app with two
// instances), crashy (prints to stderr and exits 3 at once; not started
// with the supervisor), broken (Gunicorn on a release whose import fails;
// not started), and group back = web + sleeper.
var supctlConfig = e2e.Config{Apps: []e2e.App{
	{},
	{Name: "sleeper", Command: []string{"sleep", "3600"}, Extra: "start_settle = \"500ms\"\ninstances = 2\n"},
	{Name: "crashy", Command: []string{"sh", "-c", "echo 'boom: no database' >&2; exit 3"},
		Extra: "start_settle = \"1s\"\nautostart = false\nbackoff_initial = \"30s\"\nbackoff_max = \"30s\"\n"},
	{Name: "broken", Directory: "@DIR@/broken", Extra: "autostart = false\nstart_timeout = \"30s\"\nbackoff_initial = \"30s\"\nbackoff_max = \"30s\"\n"},
}}.String() + `
[group.back]
apps = ["web", "sleeper"]
`

func startSupctlApps(t *testing.T) *e2e.Supervisor {
	t.Helper()
	s := e2e.Start(t, e2e.Options{Config: supctlConfig, Setup: func(dir string) {
		for _, r := range []struct {
			dir string
			v   testenv.Variant
		}{{"app", testenv.OK}, {"broken", testenv.ImportError}} {
			if err := os.MkdirAll(filepath.Join(dir, r.dir), 0o755); err != nil {
				t.Fatal(err)
			}
			testenv.WriteRelease(t, filepath.Join(dir, r.dir), testenv.Release{Version: "1", Variant: r.v})
		}
	}})
	s.WaitRunning(60*time.Second, "web", "sleeper:0", "sleeper:1")
	return s
}

// ctl runs supctl, checks its exit status and that its output has every
// of want, and returns the result.
func ctl(t *testing.T, s *e2e.Supervisor, code int, args []string, want ...string) e2e.CtlResult {
	t.Helper()
	r := s.Ctl(args...)
	t.Logf("supctl %s: exit %d in %s:\n%s", strings.Join(args, " "), r.Code, r.Took.Round(time.Millisecond), r.Out)
	if r.Code != code {
		t.Fatalf("supctl %s: exit %d, want %d; output:\n%s", strings.Join(args, " "), r.Code, code, r.Out)
	}
	for _, w := range want {
		if !strings.Contains(r.Out, w) {
			t.Errorf("supctl %s: output lacks %q:\n%s", strings.Join(args, " "), w, r.Out)
		}
	}
	return r
}

// TestSupctlStartCrashingExits1: starting a process app that exits 3 at
// once exits 1 within start_settle + 1 s, naming the exit and its last
// stderr line; restarting it does the same.
func TestSupctlStartCrashingExits1(t *testing.T) {
	s := startSupctlApps(t)
	for _, verb := range []string{"start", "restart"} {
		r := ctl(t, s, 1, []string{verb, "crashy"}, "exit 3", "boom: no database")
		if limit := time.Second + time.Second; r.Took > limit {
			t.Errorf("supctl %s crashy took %s, want under start_settle + 1 s (%s)", verb, r.Took, limit)
		}
	}
	ctl(t, s, 0, []string{"stop", "crashy"}, "stop crashy: ok")
}

// TestSupctlRestartBrokenGunicornExits1: starting or restarting a Gunicorn
// app whose WSGI module fails to import exits 1 with the traceback's lines.
func TestSupctlRestartBrokenGunicornExits1(t *testing.T) {
	s := startSupctlApps(t)
	ctl(t, s, 1, []string{"start", "broken"}, "start broken:", "RuntimeError")
	ctl(t, s, 1, []string{"restart", "broken"}, "restart broken:", "RuntimeError")
	ctl(t, s, 0, []string{"stop", "broken"})
	ctl(t, s, 0, []string{"restart", "web"}, "restart web: ok")
}

// TestSupctlStatusExitCodes: status exits 0 when every app named runs, 3
// when one does not, 4 for an unknown app or when no supervisor answers;
// it takes instance base names, groups, all and several targets.
func TestSupctlStatusExitCodes(t *testing.T) {
	s := startSupctlApps(t)
	ctl(t, s, 0, []string{"status", "web"}, "web")
	ctl(t, s, 0, []string{"status", "sleeper"}, "sleeper:0", "sleeper:1")
	ctl(t, s, 0, []string{"status", "group:back"}, "web", "sleeper:1")
	ctl(t, s, 0, []string{"status", "web", "sleeper:0"}, "sleeper:0")
	ctl(t, s, 3, []string{"status"}, "crashy", "broken")
	ctl(t, s, 3, []string{"status", "all"}, "crashy")
	ctl(t, s, 3, []string{"status", "web", "crashy"}, "crashy")
	ctl(t, s, 4, []string{"status", "nope"}, "nope")
	ctl(t, s, 4, []string{"-s", filepath.Join(s.Dir, "absent.sock"), "status"})
	ctl(t, s, 0, []string{"stop", "sleeper"}, "stop sleeper:0: ok", "stop sleeper:1: ok")
	ctl(t, s, 3, []string{"status", "group:back"}, "stopped")
	ctl(t, s, 0, []string{"start", "group:back"}, "start sleeper:0: ok")
	ctl(t, s, 0, []string{"status", "group:back"})
	ctl(t, s, 0, []string{"logs", "sleeper", "-n", "5"})
	ctl(t, s, 2, []string{"staus"}, `did you mean "status"?`)
	ctl(t, s, 0, []string{"logs", "--help"}, "usage: supctl logs")
}

// TestSupctlSignalPidLog: signal TTIN/TTOU changes a Gunicorn app's
// worker count and other signals are refused; pid prints the supervisor's
// and an app's PIDs; log prints and follows the supervisor's own lines; -c
// finds the socket in the configuration.
func TestSupctlSignalPidLog(t *testing.T) {
	s := startSupctlApps(t)
	ctl(t, s, 0, []string{"signal", "web", "TTIN"}, "signal TTIN web: ok")
	testenv.WaitFor(t, 60*time.Second, "web at 3 workers", func() bool { return len(s.App("web").WorkerPIDs) == 3 })
	ctl(t, s, 0, []string{"signal", "web", "TTOU"}, "signal TTOU web: ok")
	testenv.WaitFor(t, 60*time.Second, "web back at 2 workers", func() bool { return len(s.App("web").WorkerPIDs) == 2 })

	// The follower ends at its -timeout (exit 0), which need only cover
	// the quick steps from here to the restart whose lines it must print.
	follow := s.CtlAsync("-timeout", "10s", "log", "-f", "-n", "0")
	ctl(t, s, 2, []string{"signal", "web", "SEGV"}, "not allowed")
	ctl(t, s, 1, []string{"signal", "crashy", "HUP"}, "crashy")

	ctl(t, s, 0, []string{"pid"}, strconv.Itoa(s.PID()))
	ctl(t, s, 0, []string{"pid", "web"}, strconv.Itoa(s.App("web").MasterPID))
	ctl(t, s, 3, []string{"pid", "crashy"}, "0")

	ctl(t, s, 0, []string{"restart", "sleeper:0"})
	follow.WaitOutput(t, 30*time.Second, "sleeper:0")
	ctl(t, s, 0, []string{"log", "-n", "50"}, "sleeper:0")
	if r := follow.Wait(t, 60*time.Second); r.Code != 0 {
		t.Errorf("log -f: exit %d:\n%s", r.Code, r.Out)
	}

	out, err := exec.Command(s.Supctl, "-c", s.Config, "status", "web").CombinedOutput()
	if err != nil || !strings.Contains(string(out), string(control.StateRunning)) {
		t.Errorf("supctl -c %s status web: %v\n%s", s.Config, err, out)
	}
}

// TestSupctlStopSaysKill: stopping an app that ignores TERM says KILL
// ended it after stop_timeout.
func TestSupctlStopSaysKill(t *testing.T) {
	s := e2e.Start(t, e2e.Options{Config: e2e.Config{Apps: []e2e.App{{Name: "stubborn",
		Command: []string{"sh", "-c", "trap '' TERM; while :; do sleep 1; done"}, StopTimeout: "1s",
		Extra: "start_settle = \"200ms\"\n"}}}.String()})
	s.WaitRunning(60*time.Second, "stubborn")
	ctl(t, s, 0, []string{"stop", "stubborn"}, "stop stubborn: ok, killed with KILL: it outlived SIGTERM for stop_timeout 1s")
	ctl(t, s, 0, []string{"start", "stubborn"}, "start stubborn: ok")
}

// TestSupctlPermissionHint: a user refused by the control socket's mode is
// told to run supctl as root or join control_group, by status (exit 4),
// start (exit 3) and version.
func TestSupctlPermissionHint(t *testing.T) {
	s, _ := startPeer(t, "")
	bin, err := os.ReadFile(s.Supctl)
	if err != nil {
		t.Fatal(err)
	}
	supctl := filepath.Join(s.Dir, "supctl")
	if err := os.WriteFile(supctl, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"status"}, 4}, {[]string{"start", "idle"}, 3}, {[]string{"version"}, 0}} {
		cmd := exec.Command(supctl, append([]string{"-s", s.Socket}, tc.args...)...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody, Groups: []uint32{}}}
		out, _ := cmd.CombinedOutput()
		t.Logf("uid %d: supctl %s: exit %d: %s", nobody, strings.Join(tc.args, " "), cmd.ProcessState.ExitCode(), out)
		if code := cmd.ProcessState.ExitCode(); code != tc.code || !strings.Contains(string(out), "control_group") {
			t.Errorf("supctl %s as uid %d: exit %d, want %d and the control_group hint:\n%s", strings.Join(tc.args, " "), nobody, code, tc.code, out)
		}
	}
}
