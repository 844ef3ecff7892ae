package doctor

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
)

// TestEnabled: a feature is enabled only when a result works and none of
// its results is degraded; unused counts as off.
func TestEnabled(t *testing.T) {
	r := Report{
		{Feature: BPFSteering, State: Works},
		{Feature: SockDiag, State: Degraded},
		{Feature: UserSwitch, Subject: "www", State: Works},
		{Feature: UserSwitch, Subject: "nobody", State: Degraded},
		{Feature: SystemdNotify, State: Unused},
	}
	got := r.Enabled()
	want := map[string]bool{BPFSteering: true, SockDiag: false, UserSwitch: false, SystemdNotify: false, PidfdGetfd: false}
	for f, w := range want {
		if got[f] != w {
			t.Errorf("Enabled()[%s] = %v, want %v", f, got[f], w)
		}
	}
	if len(got) != len(Features()) {
		t.Errorf("Enabled() has %d features, want %d", len(got), len(Features()))
	}
	if n := len(r.Degraded()); n != 2 {
		t.Errorf("Degraded() = %d results, want 2", n)
	}
	if res, ok := r.Lookup(UserSwitch, "nobody"); !ok || res.State != Degraded {
		t.Errorf("Lookup(user_switch, nobody) = %+v, %v", res, ok)
	}
}

// TestWrite: one line per result; a degraded one carries why and fix.
func TestWrite(t *testing.T) {
	r := Report{
		{Feature: BPFSteering, State: Degraded, Why: "no CAP_BPF", Fix: "grant CAP_BPF"},
		{Feature: UserSwitch, Subject: "www", State: Works, Why: "uid 33 gid 33"},
	}
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	want := "bpf_steering: degraded: no CAP_BPF; fix: grant CAP_BPF\nuser_switch(www): works (uid 33 gid 33)\n"
	if b.String() != want {
		t.Errorf("Write:\n%s\nwant:\n%s", b.String(), want)
	}
}

// unprivilegedEnv marks the re-executed test binary that drops root first.
const unprivilegedEnv = "DOCTOR_TEST_AS_NOBODY"

// TestRunUnprivileged runs the probes as nobody (re-executing the test
// binary when run as root): BPF steering is degraded, naming CAP_BPF, and
// switching to another user is degraded, naming CAP_SETUID; as root both
// work.
func TestRunUnprivileged(t *testing.T) {
	cfg := &config.Config{Apps: []*config.App{{Name: "web", Identity: config.Identity{User: "daemon", UID: 1, GID: 1}}}}
	if os.Getenv(unprivilegedEnv) == "1" {
		// syscall.Setuid applies to every thread and drops every capability.
		if err := syscall.Setuid(65534); err != nil {
			t.Fatalf("setuid: %v", err)
		}
		r := Run(Options{Config: cfg, PID: os.Getpid()})
		logReport(t, r)
		bpf, _ := r.Lookup(BPFSteering, "")
		user, _ := r.Lookup(UserSwitch, "daemon")
		if bpf.State != Degraded || !strings.Contains(bpf.Fix, "CAP_BPF") {
			t.Errorf("as nobody: %+v, want degraded with CAP_BPF in the fix", bpf)
		}
		if user.State != Degraded || !strings.Contains(user.Fix, "CAP_SETUID") {
			t.Errorf("as nobody: %+v, want degraded with CAP_SETUID in the fix", user)
		}
		return
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to compare with an unprivileged run")
	}
	r := Run(Options{Config: cfg, PID: os.Getpid()})
	logReport(t, r)
	for _, f := range []string{BPFSteering, UserSwitch, RenameSteering, SockDiag} {
		if res, _ := r.Lookup(f, ""); res.State != Works {
			t.Errorf("as root: %+v, want works", res)
		}
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRunUnprivileged$", "-test.v=true", "-test.count=1")
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("as nobody:\n%s", out)
	if err != nil {
		t.Fatalf("unprivileged run: %v", err)
	}
}

func logReport(t *testing.T, r Report) {
	t.Helper()
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + b.String())
}

// TestGetfdFix: a pidfd_getfd refused by a seccomp filter to a process
// without CAP_SYS_PTRACE (Docker's default profile allows it only with that
// capability) names --cap-add=SYS_PTRACE first; otherwise the fix is the
// filter's.
func TestGetfdFix(t *testing.T) {
	ptrace := uint64(1) << unix.CAP_SYS_PTRACE
	tests := []struct {
		name    string
		c       caps
		err     error
		wantCap bool
	}{
		{"filtered, no CAP_SYS_PTRACE", caps{seccomp: 2, read: true}, unix.EPERM, true},
		{"filtered, CAP_SYS_PTRACE", caps{eff: ptrace, seccomp: 2, read: true}, unix.EPERM, false},
		{"not filtered", caps{read: true}, unix.EPERM, false},
		{"filtered, ENOSYS", caps{seccomp: 2, read: true}, unix.ENOSYS, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fix := getfdFix(tt.c, tt.err)
			if got := strings.Contains(fix, "--cap-add=SYS_PTRACE"); got != tt.wantCap {
				t.Errorf("fix %q: names --cap-add=SYS_PTRACE %v, want %v", fix, got, tt.wantCap)
			}
			if !strings.Contains(fix, "pidfd_getfd to SystemCallFilter=") {
				t.Errorf("fix %q lacks the seccomp fix", fix)
			}
		})
	}
}

// TestPidfdGetfdUnusedAsPID1: as PID 1 no successor ever takes orphans
// over (the namespace ends with it), so the feature is unused, with no fix
// to apply; otherwise it is probed.
func TestPidfdGetfdUnusedAsPID1(t *testing.T) {
	unfiltered := caps{eff: ^uint64(0), read: true}
	if r := probePidfdGetfd(unfiltered, nil, 1); r.State != Unused || r.Fix != "" || !strings.Contains(r.Why, "PID 1") {
		t.Errorf("as PID 1: %+v, want unused naming PID 1, no fix", r)
	}
	if r := probePidfdGetfd(unfiltered, nil, os.Getpid()); r.State == Unused {
		t.Errorf("as pid %d: %+v, want probed", os.Getpid(), r)
	}
}
