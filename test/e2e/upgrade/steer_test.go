package upgrade

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/listen/steer"
)

// steerConfig runs web (Gunicorn, TCP, from srv/current) and api
// (Gunicorn, Unix socket, from apisrv/current), both with swap reloads
// gated by healthy_after = 3 on /healthz.
var steerConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{
	{Directory: "@DIR@/srv/current", Extra: e2e.WebGatedSwap},
	{Name: "api", Workers: 1, Directory: "@DIR@/apisrv/current", Listen: []string{"unix://@DIR@/api.sock"},
		Extra: strings.ReplaceAll(e2e.WebGatedSwap, "[app.web.", "[app.api.")},
}}.String()

// releaseTrees makes web's release tree under dir/srv (1, 2, bad) and
// api's under dir/apisrv (a1, a2, abad; the bad ones answer 500
// everywhere) and returns their current links and release directories.
func releaseTrees(t *testing.T, dir string) (web, api tree) {
	t.Helper()
	for _, x := range []struct {
		tr     *tree
		root   string
		prefix string
	}{{&web, "srv", ""}, {&api, "apisrv", "a"}} {
		root := filepath.Join(dir, x.root)
		if err := os.MkdirAll(root, 0o755); err != nil {
			t.Fatal(err)
		}
		x.tr.current, x.tr.dirs = testenv.MakeReleaseTree(t, root, testenv.Release{Version: x.prefix + "1"},
			testenv.Release{Version: x.prefix + "2"}, testenv.Release{Version: x.prefix + "bad", Variant: testenv.All500})
	}
	return web, api
}

// tree is an app's release tree: its current link and release directories.
type tree struct {
	current string
	dirs    []string
}

// TestUpgradeKeepsSteering: the steering of a TCP listener (BPF) and of
// a Unix one (rename) survives `supctl upgrade` (status says bpf/rename
// before and after). Under load on both, the upgrade, swap reloads of
// either app to a good release, reloads to a release answering 500
// everywhere (rolled back: its generation never gets a client), a second
// upgrade and a third to a binary that lists no hand-over feature (handed
// no steering: shared, no BPF descriptor or generation socket kept) fail
// no request, and the supervisor then stops with every api master exiting 0.
func TestUpgradeKeepsSteering(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable here: %v", err)
	}
	var web, api tree
	s := startSupWith(t, steerConfig, func(dir string) { web, api = releaseTrees(t, dir) })
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
	sock := filepath.Join(s.Dir, "api.sock")
	load := e2e.StartLoad("tcp", e2e.FindApp(t, st, "web").Listeners[0].Bound, "/", 16)
	defer load.Stop()
	apiLoad := e2e.StartLoad("unix", sock, "/", 4)
	defer apiLoad.Stop()
	served := func(what string) {
		t.Helper()
		n, a := load.Snapshot().OK, apiLoad.Snapshot().OK
		testenv.WaitFor(t, 30*time.Second, "load served "+what, func() bool {
			return load.Snapshot().OK > n+200 && apiLoad.Snapshot().OK > a+50
		})
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
	// across logs what the load on api's Unix socket saw while do ran.
	across := func(what string, do func()) {
		t.Helper()
		before := apiLoad.Snapshot()
		do()
		after := apiLoad.Snapshot()
		t.Logf("load on api (unix) across %s: requests=%d failed=%d non2xx=%d", what,
			after.Requests-before.Requests, after.Failed()-before.Failed(), after.Non2xx-before.Non2xx)
	}
	across("the upgrade", func() { upgradeTo("v2", func() { s.installFile(s.v2) }, "bpf/rename") })
	reloadTo(t, s, "web", web.current, web.dirs[1], false)
	served("after the reload")
	// The supervisor holds one socket array, one serving map and one
	// program (the handed-over descriptors closed once adopted); no app
	// process holds any of them.
	webSt := e2e.FindApp(t, s.Status(), "web")
	for _, p := range append([]int{s.PID(), webSt.MasterPID}, webSt.WorkerPIDs...) {
		want := 0
		if p == s.PID() {
			want = 3
		}
		if got := bpfFDs(t, p); len(got) != want {
			t.Errorf("pid %d holds %d BPF descriptors, want %d: %v", p, len(got), want, got)
		}
	}
	reloadTo(t, s, "web", web.current, web.dirs[2], true)
	served("after the rollback")
	// api's reload after the upgrade gets a socket of its own, which the
	// path names once it commits; the one to the failing release never
	// does.
	before := inode(t, sock)
	reloadTo(t, s, "api", api.current, api.dirs[1], false)
	if inode(t, sock) == before {
		t.Errorf("%s names the same socket after api's reload: not switched by rename", sock)
	}
	served("after api's reload")
	switched := inode(t, sock)
	across("api's reload to the failing release", func() { reloadTo(t, s, "api", api.current, api.dirs[2], true) })
	if inode(t, sock) != switched {
		t.Errorf("%s was switched to the failing release's socket", sock)
	}
	if names := apiNames(t, s.Dir); len(names) != 2 {
		t.Errorf("api's socket names after the rollback: %v, want the path and one hidden name", names)
	}
	served("after api's rollback")
	// A second upgrade hands over the steering the first one adopted.
	upgradeTo("v1", func() { s.installFile(s.v1) }, "bpf/rename")
	// A binary whose version line lists no hand-over feature (an older
	// one) is handed no steering: it would keep the descriptors unused.
	upgradeTo("v2", func() {
		s.install([]byte(fmt.Sprintf("#!/bin/sh\nif [ \"$1\" = version ]; then %s version | sed 's/ +[^ ]*//g'; exit 0; fi\nexec %s \"$@\"\n", s.v2, s.v2)))
	}, "shared/shared")
	if got := bpfFDs(t, s.PID()); len(got) != 0 {
		t.Errorf("after the upgrade to a binary without +steer the supervisor holds BPF descriptors: %v", got)
	}
	served("after the upgrade to a binary without hand-over features")
	for name, l := range map[string]*e2e.Loader{"web (tcp)": load, "api (unix)": apiLoad} {
		res := l.Stop()
		t.Logf("load on %s: requests=%d ok=%d non2xx=%d refused=%d reset=%d timeout=%d other=%d errors=%v",
			name, res.Requests, res.OK, res.Non2xx, res.Refused, res.Reset, res.Timeout, res.OtherErr, res.Errors)
		if res.OK != res.Requests || res.Non2xx != 0 {
			t.Errorf("%s: %d of %d requests failed (%d non-2xx) across the upgrades and the reloads", name, res.Requests-res.OK, res.Requests, res.Non2xx)
		}
	}
	if code := s.Stop(syscall.SIGTERM, 60*time.Second); code != 0 {
		t.Errorf("supervisor exit status %d after SIGTERM, want 0", code)
	}
	checkAPIExits(t, s.Output())
	if names := apiNames(t, s.Dir); len(names) != 0 {
		t.Errorf("api's socket names left after the stop: %v", names)
	}
}

// apiNames lists the names of api's sockets in dir: api.sock and the
// hidden ones beside it.
func apiNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if n := e.Name(); n == "api.sock" || strings.HasPrefix(n, ".api.sock.") {
			out = append(out, n)
		}
	}
	return out
}

// checkAPIExits fails the test unless every exit of an api master logged
// in out is exit 0 (a master that finds its socket's hidden name gone at
// its stop exits 1) and there is at least one.
func checkAPIExits(t *testing.T, out string) {
	t.Helper()
	exits := regexp.MustCompile(`msg=exited app=api .*`).FindAllString(out, -1)
	if len(exits) == 0 {
		t.Error("no exit of api logged")
	}
	for _, line := range exits {
		if !strings.Contains(line, `status="exit 0"`) {
			t.Errorf("api master did not exit 0: %s", line)
		}
	}
	if strings.Contains(out, "FileNotFoundError") {
		t.Error("a Gunicorn master failed to remove its socket's name")
	}
}

// inode returns the inode path names (0: none).
func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		t.Errorf("stat %s: %v", path, err)
		return 0
	}
	return st.Ino
}

// reloadTo points app's current link at dir and reloads app: it must
// succeed, or be rolled back when bad.
func reloadTo(t *testing.T, s *sup, app, current, dir string, bad bool) {
	t.Helper()
	testenv.PointCurrent(t, current, dir)
	r := s.Ctl("reload", app)
	t.Logf("reload of %s to %s after the upgrade: exit %d in %v", app, filepath.Base(dir), r.Code, r.Took)
	if bad != (r.Code != 0) || (bad && !strings.Contains(r.Out, "rolled back")) {
		t.Fatalf("reload of %s to %s: exit %d, want rolled back only for the failing release:\n%s", app, filepath.Base(dir), r.Code, r.Out)
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
