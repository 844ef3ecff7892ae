package pid1

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// contribDocker is the shipped image's directory, from this package.
const contribDocker = "../../../contrib/docker"

// dockerStopTimeout is the `docker stop -t` the Dockerfile recommends
// (above shutdown_timeout, 30 s).
const dockerStopTimeout = 40 * time.Second

// imageConfig returns the shipped contrib/docker/gunisup.toml with the
// image's paths and ports replaced by the test's: the control socket and
// run_dir in the test directory, the shared virtualenv, @DIR@/current for
// /srv/web/current, 127.0.0.1:0 for the ports. Every other line (user
// www-data, two workers, the health check, shutdown_timeout) is the shipped
// one; a replaced line missing from the file fails t.
func imageConfig(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contribDocker, "gunisup.toml"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, r := range [][2]string{
		{`control_socket = "/run/gunisup/control.sock"`, `control_socket = "@SOCK@"`},
		{`http = "0.0.0.0:9321"`, `http = "127.0.0.1:0"`},
		{`run_dir = "/run/gunisup"`, `run_dir = "@DIR@/run"`},
		{`virtualenv = "/srv/web/venv"`, `virtualenv = "@VENV@"`},
		{`directory = "/srv/web/current"`, `directory = "@DIR@/current"`},
		{`listen = ["tcp://0.0.0.0:8000"]`, `listen = ["tcp://127.0.0.1:0"]`},
	} {
		if !strings.Contains(text, r[0]) {
			t.Fatalf("contrib/docker/gunisup.toml lacks %s", r[0])
		}
		text = strings.Replace(text, r[0], r[1], 1)
	}
	return text
}

// checkEntrypoint requires the Dockerfile's ENTRYPOINT to run the
// supervisor on the configuration file it copies gunisup.toml to (the
// invocation e2e.Start makes: BIN -c CONFIG), and STOPSIGNAL SIGTERM.
func checkEntrypoint(t *testing.T) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(contribDocker, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	df := string(b)
	m := regexp.MustCompile(`(?m)^ENTRYPOINT (\[.*\])$`).FindStringSubmatch(df)
	var argv []string
	if m == nil || json.Unmarshal([]byte(m[1]), &argv) != nil || len(argv) != 3 || argv[1] != "-c" {
		t.Fatalf("Dockerfile ENTRYPOINT %q: want [\"/usr/bin/supervisor\", \"-c\", CONFIG]", m)
	}
	if !strings.Contains(df, "COPY contrib/docker/gunisup.toml "+argv[2]+"\n") {
		t.Errorf("Dockerfile does not copy contrib/docker/gunisup.toml to %s", argv[2])
	}
	if !regexp.MustCompile(`(?m)^STOPSIGNAL SIGTERM$`).MatchString(df) {
		t.Errorf("Dockerfile: no STOPSIGNAL SIGTERM")
	}
}

// startContainer runs the image's entrypoint on imageConfig under
// e2e.DockerLike, with contrib/example/app.py as release 1 (current) and
// the test directory and virtualenv readable by www-data, and waits for
// web to run and pass its health check.
func startContainer(t *testing.T) *pid1Sup {
	t.Helper()
	checkEntrypoint(t)
	app, err := os.ReadFile("../../../contrib/example/app.py")
	if err != nil {
		t.Fatal(err)
	}
	wrap := e2e.DockerLike(t)
	s := startPID1(t, e2e.Options{Config: imageConfig(t), Wrap: wrap, Setup: func(dir string) {
		rel := filepath.Join(dir, "releases", "1")
		for _, d := range []string{dir, filepath.Dir(testenv.Venv(t))} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.MkdirAll(rel, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(rel, "app.py"), app, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(rel, filepath.Join(dir, "current")); err != nil {
			t.Fatal(err)
		}
	}})
	s.WaitState("web", control.StateRunning, 90*time.Second)
	return s
}

// TestDockerLike runs the shipped image's ENTRYPOINT and configuration
// (contrib/docker) as Docker's default runtime would (e2e.DockerLike: PID 1
// of its own PID, mount, cgroup, UTS and IPC namespaces, Docker's default
// capabilities and seccomp profile, no_new_privs, read-only cgroups), with
// contrib/example/app.py under load, and checks what a user of the image
// relies on: what doctor reports there and what the supervisor exports
// (BPF steering off, so the TCP listener is shared); a SIGKILLed Gunicorn
// master costs no request; reloads in shared mode cost no request; and
// `docker stop` (SIGTERM to PID 1) drains and exits 0 within the
// Dockerfile's recommended stop timeout.
func TestDockerLike(t *testing.T) {
	s := startContainer(t)
	t.Run("setup", func(t *testing.T) { checkContainerProcess(t, s) })
	t.Run("doctor", func(t *testing.T) { checkContainerDoctor(t, s) })
	t.Run("kill9-master", func(t *testing.T) { kill9MasterUnderHey(t, s) })
	t.Run("reloads", func(t *testing.T) { sharedReloads(t, s, e2e.Runs(30, 2)) })
	t.Run("docker-stop", func(t *testing.T) { dockerStop(t, s) })
}

// checkContainerProcess checks the supervisor's own view of the setup:
// PID 1, the capability sets, no_new_privs, a seccomp filter, its cgroup
// the root of its cgroup namespace.
func checkContainerProcess(t *testing.T, s *pid1Sup) {
	st, err := e2e.ProcStatus(s.HostPID, "CapBnd", "CapPrm", "CapEff", "CapInh", "NoNewPrivs", "Seccomp")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("supervisor (host pid %d, PID 1 in its namespace): %v", s.HostPID, st)
	want := map[string]string{"CapBnd": e2e.DockerCapMask, "CapPrm": e2e.DockerCapMask, "CapEff": e2e.DockerCapMask,
		"CapInh": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}
	for k, v := range want {
		if st[k] != v {
			t.Errorf("%s = %q, want %q", k, st[k], v)
		}
	}
	// Read from the test's cgroup namespace, the path is the container's
	// cgroup; the supervisor's own namespace has that cgroup as its root.
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", s.HostPID))
	if err != nil || !regexp.MustCompile(`(?m)^0::/(.*/)?e2e-container-[0-9]+$`).Match(b) {
		t.Errorf("/proc/%d/cgroup = %q (%v); want the container's cgroup", s.HostPID, b, err)
	}
	own, err1 := os.Readlink("/proc/self/ns/cgroup")
	its, err2 := os.Readlink(fmt.Sprintf("/proc/%d/ns/cgroup", s.HostPID))
	if err1 != nil || err2 != nil || own == its {
		t.Errorf("cgroup namespace %q (%v), the test's %q (%v); want its own", its, err2, own, err1)
	}
}

// checkContainerDoctor runs `supervisor doctor` in a second container of
// the same setup (docker run --rm --entrypoint supervisor IMAGE doctor) and
// checks its report: BPF steering and cgroup delegation degraded with
// fixes naming --cap-add, take-over by pidfd_getfd unused and the
// subreaper working (PID 1);
// then that the running supervisor exports the same verdicts as
// supervisor_feature_enabled, runs its TCP listener in shared mode and
// says so in status.
func checkContainerDoctor(t *testing.T, s *pid1Sup) {
	report, code := e2e.RunDoctor(t, e2e.DockerLike(t), s.Bin, s.Config)
	t.Logf("supervisor doctor in the container (exit %d):\n%s", code, report)
	if code != 3 {
		t.Errorf("doctor exit %d, want 3 (degraded features)", code)
	}
	for _, want := range []string{"bpf_steering: degraded", "--cap-add=BPF", "pidfd_getfd: unused (PID 1",
		"cgroup_delegation: degraded", "subreaper: works (PID 1", "user_switch(www-data): works", "sock_diag: works"} {
		if !strings.Contains(report, want) {
			t.Errorf("doctor report lacks %q", want)
		}
	}
	verdicts := e2e.FeatureVerdicts(report)
	st := s.Status()
	got, err := e2e.FeatureSeries(st.Supervisor.HTTP)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("supervisor_feature_enabled: %v", got)
	for f, v := range verdicts {
		if got[f] != v {
			t.Errorf("supervisor_feature_enabled{feature=%q} = %v, doctor says %v", f, got[f], v)
		}
	}
	if len(got) != len(verdicts) {
		t.Errorf("exported %v, doctor says %v", got, verdicts)
	}
	web := e2e.FindApp(t, st, "web")
	if len(web.Listeners) != 1 || web.Listeners[0].Steering != "shared" {
		t.Errorf("web listeners %+v; want one, steering shared", web.Listeners)
	}
	if out, _ := s.SupctlRun("status"); !strings.Contains(out, "degraded:") || !strings.Contains(out, "bpf_steering") {
		t.Errorf("supctl status has no degraded header naming bpf_steering:\n%s", out)
	}
}

// kill9MasterUnderHey SIGKILLs web's Gunicorn master 2 s into
// `hey -c 8 -z 6s`: the held socket queues connections until the next
// master accepts them, so hey must see no failed request.
func kill9MasterUnderHey(t *testing.T, s *pid1Sup) {
	before := s.WaitState("web", control.StateRunning, 60*time.Second)
	addr := s.Addr("web")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	type heyResult struct {
		h   e2e.Hey
		err error
	}
	done := make(chan heyResult, 1)
	go func() {
		h, err := e2e.RunHey(ctx, "-c", "8", "-z", "6s", "http://"+addr+"/")
		done <- heyResult{h, err}
	}()
	// The kill is part of the scenario ("2 s into the run"), not a wait
	// for a condition.
	killAt := time.NewTimer(2 * time.Second)
	defer killAt.Stop()
	select {
	case r := <-done:
		t.Fatalf("hey ended before the kill: %v\n%s", r.err, r.h.Output)
	case <-killAt.C:
	}
	master := s.hostPID(before.MasterPID)
	if err := syscall.Kill(master, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var after control.AppStatus
	testenv.WaitFor(t, 60*time.Second, "a new master running", func() bool {
		after = s.App("web")
		return after.State == control.StateRunning && after.MasterPID != before.MasterPID
	})
	recovered := time.Since(killed)
	r := <-done
	if r.err != nil {
		t.Fatalf("hey: %v", r.err)
	}
	t.Logf("hey -c 8 -z 6s, Gunicorn master (pid %d in the container, %d on the host) killed -9 at 2 s: requests=%d status=%v errors=%v p50=%s p99=%s; new master running %s after the kill",
		before.MasterPID, master, r.h.Requests, r.h.Status, r.h.Errors, r.h.P50, r.h.P99, recovered.Round(time.Millisecond))
	if r.h.Requests == 0 {
		t.Fatalf("hey parsed no requests:\n%s", r.h.Output)
	}
	if r.h.Failed() != 0 {
		t.Errorf("hey saw %d failed requests:\n%s", r.h.Failed(), r.h.Output)
	}
	if after.LastExit == nil || after.LastExit.Signal != int(syscall.SIGKILL) {
		t.Errorf("status after the kill: last_exit=%+v; want signal 9", after.LastExit)
	}
}

// sharedReloads runs n `supctl reload web` under 8 connections of load,
// with the TCP listener shared between generations (no CAP_BPF), and
// reports each reload's duration and the requests and failures during it.
// No request may fail.
func sharedReloads(t *testing.T, s *pid1Sup, n int) {
	s.WaitState("web", control.StateRunning, 60*time.Second)
	load := e2e.StartLoad("tcp", s.Addr("web"), "/", 8)
	defer load.Stop()
	testenv.WaitFor(t, 30*time.Second, "load served", func() bool { return load.Snapshot().OK >= 50 })
	start := load.Snapshot()
	var total time.Duration
	for i := 1; i <= n; i++ {
		before := load.Snapshot()
		r := s.Ctl("reload", "web")
		after := load.Snapshot()
		total += r.Took
		t.Logf("reload %2d: exit %d in %v; during it %d requests, %d failed", i, r.Code, r.Took.Round(time.Millisecond),
			after.Requests-before.Requests, after.Failed()-before.Failed())
		if r.Code != 0 || !strings.Contains(r.Out, "ok in") {
			t.Fatalf("reload %d: exit %d:\n%s", i, r.Code, r.Out)
		}
	}
	end := load.Stop()
	web := s.App("web")
	t.Logf("%d reloads in shared mode: %d requests during them, %d failed (%v); %v ms per reload on average; steering %q",
		n, end.Requests-start.Requests, end.Failed(), end.Errors, (total / time.Duration(n)).Milliseconds(), web.Listeners[0].Steering)
	if end.Failed() != 0 {
		t.Errorf("%d failed requests: %v", end.Failed(), end.Errors)
	}
}

// dockerStop sends SIGTERM to PID 1, as `docker stop` does (STOPSIGNAL),
// under load: the supervisor stops web gracefully and exits 0 well before
// dockerStopTimeout, after which Docker would SIGKILL it. No request gets
// an error answer; connections are refused once the app has exited.
func dockerStop(t *testing.T, s *pid1Sup) {
	s.WaitState("web", control.StateRunning, 60*time.Second)
	load := e2e.StartLoad("tcp", s.Addr("web"), "/", 8)
	defer load.Stop()
	testenv.WaitFor(t, 30*time.Second, "load served", func() bool { return load.Snapshot().OK >= 50 })
	termAt := time.Now()
	s.signal(syscall.SIGTERM)
	code := s.Wait(dockerStopTimeout)
	took := time.Since(termAt)
	res := load.Stop()
	t.Logf("docker stop (SIGTERM to PID 1) under load: exit %d after %v; load %s", code, took.Round(time.Millisecond), res)
	if code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0 (-1: still running after %v, when Docker would SIGKILL)", code, dockerStopTimeout)
	}
	if res.Non2xx != 0 {
		t.Errorf("%d non-2xx answers: %v", res.Non2xx, res.Errors)
	}
	if !strings.Contains(s.Output(), "msg=stopping signal=terminated") {
		t.Errorf("no 'stopping signal=terminated' in the output")
	}
}

// TestDockerLikeCapAddBPF: with `docker run --cap-add BPF` alone (Docker's
// seccomp profile then allows bpf(2); no CAP_NET_ADMIN), doctor in the
// container reports BPF steering working, as contrib/docker/Dockerfile says.
func TestDockerLikeCapAddBPF(t *testing.T) {
	bin, _ := e2e.Binaries(t)
	cfg := filepath.Join(t.TempDir(), "doctor.toml")
	if err := os.WriteFile(cfg, []byte("[app.sleep]\nkind = \"process\"\nuser = \"nobody\"\ndirectory = \"/\"\ncommand = [\"/bin/sleep\", \"600\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	report, code := e2e.RunDoctor(t, e2e.DockerLike(t, "bpf"), bin, cfg)
	t.Logf("supervisor doctor in a container with --cap-add BPF (exit %d):\n%s", code, report)
	if !strings.Contains(report, "bpf_steering: works") {
		t.Errorf("bpf_steering does not work with CAP_BPF under Docker's seccomp profile")
	}
}
