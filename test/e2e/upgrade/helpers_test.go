package upgrade

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// binaries are the builds every test here shares: the supervisor twice,
// with Version "v1" and "v2", and supctl.
type binaries struct {
	dir    string
	v1, v2 string
	supctl string
}

var (
	buildMu  sync.Mutex
	built    *binaries
	buildErr error
)

// getBinaries builds the binaries once per test binary (with -race when the
// tests run with it) and returns them.
func getBinaries(t testing.TB) *binaries {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if built == nil && buildErr == nil {
		start := time.Now()
		built, buildErr = buildAll()
		if buildErr == nil {
			t.Logf("built supervisor v1, v2 and supctl (race=%v) in %s", e2e.RaceEnabled, time.Since(start).Round(time.Millisecond))
		}
	}
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return built
}

// cleanupBinaries removes the builds (from TestMain).
func cleanupBinaries() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if built != nil {
		if err := os.RemoveAll(built.dir); err != nil {
			fmt.Fprintln(os.Stderr, "upgrade tests: removing builds:", err)
		}
		built = nil
	}
}

func buildAll() (*binaries, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return nil, errors.New("cannot locate the module root")
	}
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", ".."))
	dir, err := os.MkdirTemp("", "upgrade-bin-")
	if err != nil {
		return nil, fmt.Errorf("build directory: %w", err)
	}
	b := &binaries{dir: dir, supctl: filepath.Join(dir, "supctl")}
	goBuild := func(out, version string, pkgs ...string) error {
		args := []string{"build", "-o", out}
		if e2e.RaceEnabled {
			args = append(args, "-race")
		}
		if version != "" {
			args = append(args, "-ldflags", "-X github.com/gunisup/supervisor/daemon.Version="+version)
		}
		cmd := exec.Command("go", append(args, pkgs...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go %s: %w\n%s", strings.Join(cmd.Args[1:], " "), err, out)
		}
		return nil
	}
	for _, v := range []struct {
		version string
		path    *string
	}{{"v1", &b.v1}, {"v2", &b.v2}} {
		*v.path = filepath.Join(dir, "supervisor-"+v.version)
		if err := goBuild(*v.path, v.version, "./cmd/supervisor"); err != nil {
			return nil, errors.Join(err, os.RemoveAll(dir))
		}
	}
	if err := goBuild(b.supctl, "", "./cmd/supctl"); err != nil {
		return nil, errors.Join(err, os.RemoveAll(dir))
	}
	return b, nil
}

// baseConfig runs three apps: web (Gunicorn, 2 workers, TCP), api
// (Gunicorn, 1 worker, Unix socket) and worker (a process: this test binary
// in helper mode "block"). @TESTBIN@ is the test binary.
const baseConfig = `
[supervisor]
control_socket = "@SOCK@"
http = ""
run_dir = "@DIR@/run"
shutdown_timeout = "30s"

[app.web]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 2
listen = ["tcp://127.0.0.1:0"]
stop_timeout = "10s"

[app.api]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 1
listen = ["unix://@DIR@/api.sock"]
stop_timeout = "10s"

[app.worker]
allow_root = true
kind = "process"
command = ["@TESTBIN@"]
directory = "@DIR@"
env = { UPGRADE_TEST_HELPER = "block" }
stop_timeout = "10s"
`

// sup is a supervisor started from a binary path the test controls
// (Dir/bin/supervisor), so that a new version can be installed over it.
type sup struct {
	t      *testing.T
	b      *binaries
	Dir    string
	Bin    string
	Config string
	Socket string
	Mark   string
	venv   string
	cmd    *exec.Cmd
	out    *testenv.SyncBuffer
	done   chan struct{}
	exit   error
}

// startSup installs v1 at Dir/bin/supervisor, writes the configuration
// (placeholders @DIR@ @VENV@ @SOCK@ @TESTBIN@) and starts the supervisor
// with a marker and env in its environment. The test's cleanup TERMs it
// (KILL after 60 s) and fails the test if any marked process is left.
func startSup(t *testing.T, cfgText string, env ...string) *sup {
	t.Helper()
	return startSupWith(t, cfgText, nil, env...)
}

// startSupWith is startSup with setup run on the test directory (after
// Dir/app holds release 1, before the supervisor starts).
func startSupWith(t *testing.T, cfgText string, setup func(dir string), env ...string) *sup {
	t.Helper()
	b := getBinaries(t)
	venv := testenv.Venv(t)
	dir := testenv.ShortTempDir(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("test binary: %v", err)
	}
	s := &sup{t: t, b: b, Dir: dir, Bin: filepath.Join(dir, "bin", "supervisor"), Config: filepath.Join(dir, "supervisor.toml"),
		Socket: filepath.Join(dir, "ctl.sock"), venv: venv, out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	for _, d := range []string{"bin", "app"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WriteRelease(t, filepath.Join(dir, "app"), testenv.Release{Version: "1"})
	if setup != nil {
		setup(dir)
	}
	s.installFile(b.v1)
	s.writeConfig(cfgText, self)
	key, mark := testenv.MarkEnv(t)
	s.Mark = mark
	s.cmd = exec.Command(s.Bin, "-c", s.Config)
	s.cmd.Env = append(append(os.Environ(), key+"="+mark), env...)
	s.cmd.Stdout = s.out
	s.cmd.Stderr = s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start supervisor: %v", err)
	}
	go func() {
		s.exit = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.stop(syscall.SIGTERM, 60*time.Second)
		if t.Failed() {
			t.Logf("supervisor output:\n%s", s.out.String())
		}
		testenv.AssertNoLeftovers(t, mark, 10*time.Second)
	})
	testenv.WaitFor(t, 30*time.Second, "control socket "+s.Socket, func() bool {
		if s.exited() {
			t.Fatalf("supervisor exited early (%v):\n%s", s.exit, s.out.String())
		}
		_, err := os.Stat(s.Socket)
		return err == nil
	})
	return s
}

func (s *sup) writeConfig(text, testBin string) {
	s.t.Helper()
	text = testenv.PassMark(strings.ReplaceAll(e2e.Expand(text, s.Dir, s.venv, s.Socket), "@TESTBIN@", testBin))
	if err := os.WriteFile(s.Config, []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

// install puts content (mode 0755) at the supervisor's path the way a
// package manager does: write path.new, then rename it over the path.
func (s *sup) install(content []byte) {
	s.t.Helper()
	tmp := s.Bin + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		s.t.Fatalf("write %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, s.Bin); err != nil {
		s.t.Fatalf("install %s: %v", s.Bin, err)
	}
}

// installFile installs a copy of the file at src.
func (s *sup) installFile(src string) {
	s.t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		s.t.Fatalf("read %s: %v", src, err)
	}
	s.install(b)
}

func (s *sup) exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// wait waits up to timeout for the supervisor to exit and returns its exit
// status (128+N for signal N), or -1 if it is still running.
func (s *sup) wait(timeout time.Duration) int {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.done:
		return exitStatus(s.exit)
	case <-t.C:
		return -1
	}
}

// stop sends sig, waits up to timeout, then KILLs; it returns the exit status.
func (s *sup) stop(sig syscall.Signal, timeout time.Duration) int {
	if s.exited() {
		return exitStatus(s.exit)
	}
	_ = s.cmd.Process.Signal(sig) // it may have exited meanwhile
	if code := s.wait(timeout); code != -1 {
		return code
	}
	s.t.Errorf("supervisor did not exit within %s of %s; killing", timeout, sig)
	_ = s.cmd.Process.Kill() // last resort
	<-s.done
	return exitStatus(s.exit)
}

func exitStatus(err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// pid is the supervisor's PID (it never changes: upgrades exec in place).
func (s *sup) pid() int { return s.cmd.Process.Pid }

// supctl runs supctl against this supervisor; it returns the combined
// output, the exit status and how long it took.
func (s *sup) supctl(args ...string) (string, int, time.Duration) {
	start := time.Now()
	cmd := exec.Command(s.b.supctl, append([]string{"-s", s.Socket}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), exitStatus(err), time.Since(start)
}

// status returns the supervisor's full status (fails the test if it cannot).
func (s *sup) status() *control.StatusResponse {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := control.NewClient(s.Socket).Status(ctx, "")
	if err != nil {
		s.t.Fatalf("status: %v", err)
	}
	return st
}

// app returns one app's snapshot from st.
func app(t testing.TB, st *control.StatusResponse, name string) control.AppStatus {
	t.Helper()
	for _, a := range st.Apps {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("status has no app %s", name)
	return control.AppStatus{}
}

// waitRunning waits until every app runs (and is healthy where checked).
func (s *sup) waitRunning(timeout time.Duration, names ...string) *control.StatusResponse {
	s.t.Helper()
	var last *control.StatusResponse
	testenv.WaitFor(s.t, timeout, fmt.Sprintf("apps %v running", names), func() bool {
		if s.exited() {
			s.t.Fatalf("supervisor exited (%v):\n%s", s.exit, s.out.String())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := control.NewClient(s.Socket).Status(ctx, "")
		if err != nil {
			return false
		}
		last = st
		for _, n := range names {
			a := app(s.t, st, n)
			if a.State != control.StateRunning || a.MasterPID == 0 || (a.HealthChecked && !a.Healthy) {
				return false
			}
		}
		return true
	})
	return last
}

// fdTargets maps each open descriptor of pid to its /proc link target
// ("socket:[123]", "pipe:[456]", "/memfd:supervisor-handover (deleted)", ...).
func fdTargets(pid int) (map[int]string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list fds of pid %d: %w", pid, err)
	}
	out := map[int]string{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		out[fd] = target
	}
	return out, nil
}

// handoverMemfds lists pid's descriptors that are a hand-over state memfd.
func handoverMemfds(fds map[int]string) []string {
	var out []string
	for fd, target := range fds {
		if strings.Contains(target, "memfd:supervisor-handover") {
			out = append(out, fmt.Sprintf("fd %d -> %s", fd, target))
		}
	}
	return out
}

// listenInode returns the socket inode of the listener bound at addr
// (127.0.0.1:PORT, or a Unix socket path).
func listenInode(addr string) (string, error) {
	if strings.HasPrefix(addr, "/") {
		// The supervisor binds at a hidden name beside the path (hard-linked
		// to it); /proc/net/unix shows the name bound.
		held := filepath.Join(filepath.Dir(addr), "."+filepath.Base(addr)+".held")
		return procNetInode("/proc/net/unix", func(f []string) bool {
			// Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening.
			return len(f) >= 8 && (f[7] == addr || f[7] == held) && f[3] == "00010000"
		}, 6)
	}
	return tcpUDPInode("/proc/net/tcp", addr, "0A")
}

// udpInode returns the inode of the UDP socket bound at addr (127.0.0.1:PORT).
func udpInode(addr string) (string, error) { return tcpUDPInode("/proc/net/udp", addr, "07") }

func tcpUDPInode(table, addr, state string) (string, error) {
	host, portStr, ok := strings.Cut(addr, ":")
	if !ok || host != "127.0.0.1" {
		return "", fmt.Errorf("address %q: want 127.0.0.1:PORT", addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		return "", fmt.Errorf("address %q: %w", addr, err)
	}
	local := fmt.Sprintf("0100007F:%04X", port)
	// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
	return procNetInode(table, func(f []string) bool { return len(f) >= 10 && f[1] == local && f[3] == state }, 9)
}

func procNetInode(table string, match func([]string) bool, col int) (string, error) {
	b, err := os.ReadFile(table)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", table, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if match(f) {
			return "socket:[" + f[col] + "]", nil
		}
	}
	return "", fmt.Errorf("%s: no matching socket", table)
}

// children returns the PIDs whose parent is pid.
func children(pid int) ([]int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return nil, fmt.Errorf("children of %d: %w", pid, err)
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("children of %d: %q: %w", pid, f, err)
		}
		out = append(out, n)
	}
	return out, nil
}

// scriptVersionOnly is a "binary" that prints a valid version line for
// `version` and exits 0 for `check`, and exits 1 for anything else: it passes
// those pre-flight checks but cannot run, let alone take over.
func scriptVersionOnly(version string) []byte {
	return []byte(`#!/bin/sh
case "$1" in
version) echo "supervisor ` + version + ` (handover 1)"; exit 0 ;;
check) echo "ok"; exit 0 ;;
esac
echo "fake supervisor: cannot run $*" >&2
exit 1
`)
}
