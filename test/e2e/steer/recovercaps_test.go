package steer

import (
	"bufio"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// unitFile is the shipped systemd unit, relative to this package.
const unitFile = "../../../contrib/systemd/gunisup.service"

// unitBoundingSet returns the capabilities of unitFile's
// CapabilityBoundingSet= lines, lower case without the CAP_ prefix (as
// setpriv names them).
func unitBoundingSet(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatalf("read the unit's capabilities: %v", err)
	}
	defer f.Close()
	var caps []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "CapabilityBoundingSet=")
		if !ok {
			continue
		}
		for _, c := range strings.Fields(v) {
			caps = append(caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", unitFile, err)
	}
	if len(caps) == 0 || slices.Contains(caps, "sys_admin") {
		t.Fatalf("%s bounds capabilities to %v: want a list without CAP_SYS_ADMIN", unitFile, caps)
	}
	return caps
}

// TestRecoverWithoutSysAdmin: the supervisor runs with the capability
// bounding set of the shipped systemd unit (CAP_BPF, CAP_SYS_PTRACE, no
// CAP_SYS_ADMIN, so the dead supervisor's BPF objects cannot be opened by
// id). Under load it dies by SIGKILL and is started again with the same
// set: it recovers with BPF steering (new objects around the orphans'
// socket) and no failed request, and a deploy of a release answering 500
// everywhere is then rolled back without a client seeing a non-2xx.
func TestRecoverWithoutSysAdmin(t *testing.T) {
	wrap := []string{"setpriv", "--bounding-set=-all,+" + strings.Join(unitBoundingSet(t), ",+"), "--"}
	a := startAppWrapped(t, "tcp", []testenv.Release{{Version: "v0"}, {Version: "v1", Variant: testenv.All500}}, wrap)
	if st := a.App("web"); len(st.Listeners) != 1 || st.Listeners[0].Steering != "bpf" {
		t.Skipf("no BPF steering with the unit's capabilities here: %+v", st.Listeners)
	}
	load := e2e.StartLoad("tcp", a.Addr, "/", 8)
	defer load.Stop()
	testenv.WaitFor(t, 10*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
	waitServingRecorded(t, a.Supervisor)
	a.Kill9()
	killed := time.Now()
	sup := e2e.Restart(t, a.Supervisor, e2e.Options{Wrap: wrap})
	took := recovered(t, sup, a.Current, a.Dirs[0]).Sub(killed)
	if t.Failed() {
		t.Fatalf("supervisor output:\n%s", sup.Output())
	}
	afterRecovery := load.Snapshot()
	if r := sup.CtlAsync("deploy", "web", a.Dirs[1]).Wait(t, 90*time.Second); r.Code != 1 {
		t.Errorf("deploy of the 500-ing release after the recovery: exit %d, want 1:\n%s", r.Code, r.Out)
	}
	res := load.Stop()
	t.Logf("kill -9 under the unit's capabilities (no CAP_SYS_ADMIN), recovered with bpf in %v (load until then: %s), then a deploy of a 500-ing release rolled back: %s", took, afterRecovery, res)
	if res.Failed() != 0 {
		t.Errorf("load across the recovery and the deploy: %s\nsupervisor output:\n%s", res, sup.Output())
	}
}
