package upgrade

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/listen/steer"
)

// steerConfig runs web (Gunicorn, TCP, from srv/current, swap reloads
// gated by healthy_after = 3 on /healthz) and api (Gunicorn, Unix socket).
var steerConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{
	{Directory: "@DIR@/srv/current", Extra: e2e.WebGatedSwap},
	{Name: "api", Workers: 1, Listen: []string{"unix://@DIR@/api.sock"}},
}}.String()

// TestUpgradeKeepsSteering: a TCP listener steered by BPF keeps its
// steering across `supctl upgrade` (status says bpf before and after; the
// Unix listener steered by rename is shared after it). Under load, the
// upgrade, a swap reload to a good release, a reload to a release
// answering 500 everywhere (rolled back: its generation never gets a
// client), a second upgrade and a third to a binary that does not adopt
// steering (handed none: shared, no BPF descriptor kept) fail no request.
func TestUpgradeKeepsSteering(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable here: %v", err)
	}
	var current string
	var dirs []string
	s := startSupWith(t, steerConfig, func(dir string) {
		root := filepath.Join(dir, "srv")
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		current, dirs = testenv.MakeReleaseTree(t, root, testenv.Release{Version: "1"},
			testenv.Release{Version: "2"}, testenv.Release{Version: "bad", Variant: testenv.All500})
	})
	st := s.WaitRunning(90*time.Second, "web", "api")
	modes := func() string {
		var m []string
		for _, name := range []string{"web", "api"} {
			for _, l := range e2e.FindApp(t, s.Status(), name).Listeners {
				m = append(m, l.Steering)
			}
		}
		return strings.Join(m, "/")
	}
	if got := modes(); got != "bpf/rename" {
		t.Fatalf("steering before the upgrade: web/api %s, want bpf/rename", got)
	}
	addr := e2e.FindApp(t, st, "web").Listeners[0].Bound
	load := e2e.StartLoad("tcp", addr, "/", 16)
	defer load.Stop()
	served := func(what string) {
		t.Helper()
		n := load.Snapshot().OK
		testenv.WaitFor(t, 30*time.Second, "load served "+what, func() bool { return load.Snapshot().OK > n+200 })
	}
	served("before the upgrade")

	upgradeTo := func(version string, install func(), want string) {
		t.Helper()
		install()
		if r := s.Ctl("upgrade"); r.Code != 0 {
			t.Fatalf("upgrade to %s: exit %d in %v:\n%s", version, r.Code, r.Took, r.Out)
		}
		testenv.WaitFor(t, 60*time.Second, "upgraded to "+version, func() bool { return s.Status().Supervisor.Version == version })
		if got := modes(); got != want {
			t.Errorf("steering after the upgrade to %s: web/api %s, want %s", version, got, want)
		}
		served("after the upgrade to " + version)
	}
	upgradeTo("v2", func() { s.installFile(s.v2) }, "bpf/shared")
	reloadTo(t, s, current, dirs[1], false)
	served("after the reload")
	// The supervisor holds one socket array, one serving map and one
	// program (the handed-over descriptors closed once adopted); no app
	// process holds any of them.
	web := e2e.FindApp(t, s.Status(), "web")
	for _, p := range append([]int{s.PID(), web.MasterPID}, web.WorkerPIDs...) {
		want := 0
		if p == s.PID() {
			want = 3
		}
		if got := bpfFDs(t, p); len(got) != want {
			t.Errorf("pid %d holds %d BPF descriptors, want %d: %v", p, len(got), want, got)
		}
	}
	reloadTo(t, s, current, dirs[2], true)
	served("after the rollback")
	// A second upgrade hands over the steering the first one adopted.
	upgradeTo("v1", func() { s.installFile(s.v1) }, "bpf/shared")
	// A binary whose version line lacks upgrade.FeatureSteer (an older
	// one) is handed no steering: it would keep the descriptors unused.
	upgradeTo("v2", func() {
		s.install([]byte(fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = version ]; then %s version | sed 's/ +steer//'; exit 0; fi\nexec %s \"$@\"\n", s.v2, s.v2)))
	}, "shared/shared")
	if got := bpfFDs(t, s.PID()); len(got) != 0 {
		t.Errorf("after the upgrade to a binary without +steer the supervisor holds BPF descriptors: %v", got)
	}
	served("after the upgrade to a binary without +steer")
	res := load.Stop()
	t.Logf("load: requests=%d ok=%d non2xx=%d refused=%d reset=%d timeout=%d other=%d errors=%v",
		res.Requests, res.OK, res.Non2xx, res.Refused, res.Reset, res.Timeout, res.OtherErr, res.Errors)
	if res.OK != res.Requests || res.Non2xx != 0 {
		t.Errorf("%d of %d requests failed (%d non-2xx) across the upgrade and the reloads", res.Requests-res.OK, res.Requests, res.Non2xx)
	}
}

// reloadTo points current at dir and reloads web: it must succeed, or be
// rolled back when bad.
func reloadTo(t *testing.T, s *sup, current, dir string, bad bool) {
	t.Helper()
	testenv.PointCurrent(t, current, dir)
	r := s.Ctl("reload", "web")
	t.Logf("reload to %s after the upgrade: exit %d in %v", filepath.Base(dir), r.Code, r.Took)
	if bad != (r.Code != 0) || (bad && !strings.Contains(r.Out, "rolled back")) {
		t.Fatalf("reload to %s: exit %d, want rolled back only for the failing release:\n%s", filepath.Base(dir), r.Code, r.Out)
	}
}

// bpfFDs lists pid's descriptors that are BPF maps or programs.
func bpfFDs(t *testing.T, pid int) []string {
	t.Helper()
	fds, err := testenv.FDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for fd, target := range fds {
		if strings.HasPrefix(target, "anon_inode:bpf") {
			out = append(out, fmt.Sprintf("fd %d -> %s", fd, target))
		}
	}
	return out
}
