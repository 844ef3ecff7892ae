// Package doctor holds the end-to-end test of `supervisor doctor` and of
// the same report as the running supervisor exports it
// (supervisor_feature_enabled): as root, under a capability bounding set
// without CAP_BPF and CAP_SYS_PTRACE (oldUnitCaps), and as Docker's default
// runtime runs a container's entrypoint (e2e.DockerLike: PID 1 of its own
// namespaces, Docker's default capabilities and seccomp profile, read-only
// cgroups).
package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/proc"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}

// oldUnitCaps is the bounding set gunisup.service had before it granted
// CAP_BPF and CAP_SYS_PTRACE.
const oldUnitCaps = "-all,+net_bind_service,+setuid,+setgid,+chown,+kill,+dac_override,+fowner,+sys_nice,+sys_resource"

// sleepApp runs as nobody: a user to switch to, whose orphans need
// CAP_SYS_PTRACE to be taken over.
const sleepApp = `[app.sleep]
kind = "process"
user = "nobody"
directory = "/"
command = ["/bin/sleep", "600"]
`

// config is the doctor's configuration: sleepApp only.
const config = sleepApp

// TestDoctorReports runs `supervisor doctor` in three setups and checks
// each report (exit status, the degraded features and their fixes), that
// the three differ, and that a supervisor started in the same setup
// exports the same verdicts as supervisor_feature_enabled.
func TestDoctorReports(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs under setpriv and in namespaces")
	}
	if _, err := proc.OwnCgroup(); err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	setups := []struct {
		name     string
		wrap     func(testing.TB) []string // nil: the supervisor run directly
		pid1     bool                      // wrap makes it PID 1 of a namespace
		exit     int
		disabled []string // features reported degraded or unused
		say      []string // in the report
	}{
		{"root", nil, false, 0, []string{"systemd_notify"}, []string{"bpf_steering: works", "user_switch(nobody): works"}},
		{"old unit bounding set", func(testing.TB) []string { return []string{"setpriv", "--bounding-set=" + oldUnitCaps} },
			false, 3, []string{"bpf_steering", "pidfd_getfd", "systemd_notify"},
			[]string{"grant CAP_BPF", "grant CAP_SYS_PTRACE", "subreaper: works (orphaned"}},
		{"docker default", func(t testing.TB) []string { return e2e.DockerLike(t) }, true, 3, []string{"bpf_steering", "pidfd_getfd", "cgroup_delegation", "systemd_notify"},
			[]string{"--cap-add=BPF", "pidfd_getfd: unused (PID 1", "cgroup_delegation: degraded", "--cap-add=SYS_ADMIN", "subreaper: works (PID 1"}},
	}
	bin, _ := e2e.Binaries(t)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "doctor.toml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, su := range setups {
		t.Run(su.name, func(t *testing.T) {
			var wrap []string
			if su.wrap != nil {
				wrap = su.wrap(t)
			}
			report, exit := e2e.RunDoctor(t, wrap, bin, cfg)
			t.Logf("supervisor doctor (exit %d):\n%s", exit, report)
			if exit != su.exit {
				t.Errorf("exit %d, want %d", exit, su.exit)
			}
			for _, s := range su.say {
				if !strings.Contains(report, s) {
					t.Errorf("report lacks %q", s)
				}
			}
			want := e2e.FeatureVerdicts(report)
			for _, f := range su.disabled {
				if want[f] != 0 {
					t.Errorf("%s reported enabled, want degraded or unused", f)
				}
			}
			for other, r := range seen {
				if r == report {
					t.Errorf("same report as %s", other)
				}
			}
			seen[su.name] = report
			checkExported(t, wrap, su.pid1, want)
		})
	}
}

// checkExported starts the supervisor under wrap (as PID 1 of a namespace
// when pid1) and requires its supervisor_feature_enabled series to equal
// want.
func checkExported(t *testing.T, wrap []string, pid1 bool, want map[string]float64) {
	t.Helper()
	s := e2e.Start(t, e2e.Options{Config: e2e.Config{HTTP: "127.0.0.1:0"}.String() + "\n" + sleepApp, Wrap: wrap})
	s.WaitRunning(60*time.Second, "sleep")
	got, err := e2e.FeatureSeries(s.Status().Supervisor.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	if pid1 {
		stopPID1(t, s)
	}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("supervisor_feature_enabled{feature=%q} = %v, doctor says %v", f, got[f], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("exported %v, doctor says %v", got, want)
	}
}

// stopPID1 TERMs the supervisor running as PID 1 under unshare (the only
// child of the unshare process, which the wrap's first program became) and
// waits for it to exit.
func stopPID1(t *testing.T, s *e2e.Supervisor) {
	t.Helper()
	kids, err := testenv.Children(s.Cmd.Process.Pid)
	if err != nil || len(kids) != 1 {
		t.Fatalf("children of unshare %d: %v, %v; want the supervisor alone", s.Cmd.Process.Pid, kids, err)
	}
	if err := syscall.Kill(kids[0], syscall.SIGTERM); err != nil {
		t.Fatalf("TERM the supervisor %d: %v", kids[0], err)
	}
	if code := s.Wait(60 * time.Second); code == -1 {
		t.Errorf("supervisor %d did not exit within 60s of TERM", kids[0])
	}
}
