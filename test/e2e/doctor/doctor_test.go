// Package doctor holds the end-to-end test of `supervisor doctor` and of
// the same report as the running supervisor exports it
// (supervisor_feature_enabled): as root, under a capability bounding set
// without CAP_BPF and CAP_SYS_PTRACE (oldUnitCaps), and under Docker's default capabilities
// as PID 1 of a PID namespace with read-only cgroups.
package doctor

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
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
// CAP_BPF and CAP_SYS_PTRACE; dockerCaps is Docker's default set.
const (
	oldUnitCaps = "-all,+net_bind_service,+setuid,+setgid,+chown,+kill,+dac_override,+fowner,+sys_nice,+sys_resource"
	dockerCaps  = "-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write"
)

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

// dockerWrap runs the command as PID 1 of a new PID namespace, with every
// cgroup2 mount read-only, Docker's default capabilities and no new
// privileges. `unshare --fork` forwards no signal: stopPID1 signals the
// supervisor itself.
var dockerWrap = []string{"unshare", "--pid", "--fork", "--mount-proc", "--propagation", "private", "/bin/sh", "-c",
	`for m in $(awk '{for (i = 7; i < NF; i++) if ($i == "-") { if ($(i+1) == "cgroup2") print $5; break }}' /proc/self/mountinfo); do mount -o remount,bind,ro "$m" || exit 1; done; exec setpriv --bounding-set=` + dockerCaps + ` --no-new-privs "$@"`, "sh"}

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
		wrap     []string
		exit     int
		disabled []string // features reported degraded or unused
		say      []string // in the report
	}{
		{"root", nil, 0, []string{"systemd_notify"}, []string{"bpf_steering: works", "user_switch(nobody): works"}},
		{"old unit bounding set", []string{"setpriv", "--bounding-set=" + oldUnitCaps},
			3, []string{"bpf_steering", "pidfd_getfd", "systemd_notify"},
			[]string{"grant CAP_BPF", "grant CAP_SYS_PTRACE", "subreaper: works (orphaned"}},
		{"docker default", dockerWrap, 3, []string{"bpf_steering", "pidfd_getfd", "cgroup_delegation", "systemd_notify"},
			[]string{"--cap-add=BPF", "--cap-add=SYS_PTRACE", "cgroup_delegation: degraded", "subreaper: works (PID 1"}},
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
			report, exit := runDoctor(t, su.wrap, bin, cfg)
			t.Logf("supervisor doctor (exit %d):\n%s", exit, report)
			if exit != su.exit {
				t.Errorf("exit %d, want %d", exit, su.exit)
			}
			for _, s := range su.say {
				if !strings.Contains(report, s) {
					t.Errorf("report lacks %q", s)
				}
			}
			want := enabledFrom(report)
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
			checkExported(t, su.wrap, want)
		})
	}
}

// runDoctor runs `supervisor doctor -c cfg` under wrap and returns its
// output and exit status.
func runDoctor(t *testing.T, wrap []string, bin, cfg string) (string, int) {
	t.Helper()
	argv := append(append([]string{}, wrap...), bin, "doctor", "-c", cfg)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET=")
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%v: %v", argv, err)
	}
	return string(out), 0
}

// enabledFrom reads a doctor report into supervisor_feature_enabled's
// values: 1 for a feature whose every line works, 0 otherwise.
func enabledFrom(report string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(report))
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			continue
		}
		feature, _, _ := strings.Cut(name, "(")
		v := 0.0
		if strings.HasPrefix(rest, "works") {
			v = 1
		}
		if old, ok := out[feature]; !ok || v < old {
			out[feature] = v
		}
	}
	return out
}

// checkExported starts the supervisor under wrap and requires its
// supervisor_feature_enabled series to equal want.
func checkExported(t *testing.T, wrap []string, want map[string]float64) {
	t.Helper()
	s := e2e.Start(t, e2e.Options{Config: e2e.Config{HTTP: "127.0.0.1:0"}.String() + "\n" + sleepApp, Wrap: wrap})
	s.WaitRunning(60*time.Second, "sleep")
	got, err := featureSeries(s.Status().Supervisor.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	if len(wrap) > 0 && wrap[0] == "unshare" {
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

// featureSeries scrapes addr's /metrics for supervisor_feature_enabled.
func featureSeries(addr string) (map[string]float64, error) {
	c := &http.Client{Timeout: 15 * time.Second}
	resp, err := c.Get("http://" + addr + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", addr, err)
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		var f string
		var v float64
		if _, err := fmt.Sscanf(line, "supervisor_feature_enabled{feature=%q} %g", &f, &v); err == nil {
			out[f] = v
		}
	}
	return out, nil
}

// stopPID1 TERMs the supervisor running as PID 1 under unshare (the only
// child of the unshare process) and waits for it to exit.
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
