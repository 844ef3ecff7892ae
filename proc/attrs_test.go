package proc

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// attrsScript prints, one per line, what TestForkExecCredentialsAndAttrs
// checks: uid, gid, groups, umask, nofile and core limits (soft and hard),
// oom_score_adj and nice.
const attrsScript = `id -u; id -g; id -G; umask; ulimit -Sn; ulimit -Hn; ulimit -c; cat /proc/self/oom_score_adj; nice`

// TestForkExecCredentialsAndAttrs starts a real shell as nobody with a
// negative nice, which only a privileged parent can give it, and rlimits
// set from outside although this machine's root lacks CAP_SYS_RESOURCE:
// the gate applies them before the program runs, under the dropped
// credentials.
func TestForkExecCredentialsAndAttrs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change credentials")
	}
	r := NewReaper()
	defer r.Close()
	mask, nice, oom := 0o027, -5, 300
	spec := Spec{
		Argv: []string{"/bin/sh", "-c", attrsScript},
		Env:  []string{"PATH=/usr/bin:/bin"},
		Dir:  "/",
		Cred: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{65534}},
		Attrs: Attrs{Umask: &mask, Nice: &nice, OOMScoreAdj: &oom, Rlimits: []Rlimit{
			{Resource: unix.RLIMIT_NOFILE, Value: 256},
			{Resource: unix.RLIMIT_CORE, Value: 0},
		}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, info, err := r.OutputSpec(ctx, spec)
	if err != nil || info.Code != 0 {
		t.Fatalf("OutputSpec: %v %+v\n%s", err, info, out)
	}
	got := strings.Split(strings.TrimSpace(string(out)), "\n")
	want := []string{"65534", "65534", "65534", "0027", "256", "256", "0", "300", "-5"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("child saw\n%q\nwant\n%q", got, want)
	}
}

// TestForkExecAttrsFailure: an attribute the kernel refuses ends the child
// before its program runs, and the error names the attribute.
func TestForkExecAttrsFailure(t *testing.T) {
	r := NewReaper()
	defer r.Close()
	marker := t.TempDir() + "/ran"
	spec := Spec{
		Argv:  []string{"/bin/sh", "-c", "echo > " + marker},
		Dir:   "/",
		Attrs: Attrs{Rlimits: []Rlimit{{Resource: 999, Value: 1}}},
	}
	pid, _, err := r.ForkExec(spec, testDevNull(t), testDevNull(t))
	if err == nil || !strings.Contains(err.Error(), "rlimit 999") {
		t.Fatalf("ForkExec = pid %d, err %v; want an error naming rlimit 999", pid, err)
	}
	if _, statErr := os.Stat(marker); statErr == nil {
		t.Errorf("the program ran although its attributes failed")
	}
	if z := testZombies(t, os.Getpid()); len(z) != 0 {
		t.Errorf("zombies left: %v", z)
	}
}
