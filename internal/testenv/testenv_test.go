package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	code := m.Run()
	Cleanup()
	os.Exit(code)
}

// gunicorn is a Gunicorn master started by a test on an inherited socket.
type gunicorn struct {
	cmd    *exec.Cmd
	out    *SyncBuffer
	exited chan struct{} // closed when cmd.Wait returned
	err    error         // cmd.Wait's result, set before exited is closed
}

// startGunicorn runs venv/bin/gunicorn APP_MODULE in dir, serving listener
// (a *net.TCPListener or *net.UnixListener) as fd 3 through GUNICORN_FD=3
// GUNICORN_PID=-1, with env (KEY=VALUE, the test's mark among them) added to
// its environment, in its own process group.
// The test's cleanup kills the group if the test did not stop it.
func startGunicorn(t *testing.T, venv, dir string, listener net.Listener, workers string, env ...string) *gunicorn {
	t.Helper()
	type filer interface{ File() (*os.File, error) }
	f, err := listener.(filer).File()
	if err != nil {
		t.Fatalf("getting listener file: %v", err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Errorf("closing listener file: %v", err)
		}
	}()
	g := &gunicorn{out: &SyncBuffer{}, exited: make(chan struct{})}
	g.cmd = exec.Command(filepath.Join(venv, "bin", "gunicorn"), "--workers", workers, "--graceful-timeout", "2", AppModule)
	g.cmd.Dir = dir
	g.cmd.Env = append(append(os.Environ(), "GUNICORN_FD=3", "GUNICORN_PID=-1"), env...)
	g.cmd.ExtraFiles = []*os.File{f}
	g.cmd.Stdout = g.out
	g.cmd.Stderr = g.out
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := g.cmd.Start(); err != nil {
		t.Fatalf("starting gunicorn: %v", err)
	}
	go func() {
		g.err = g.cmd.Wait()
		close(g.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-g.exited:
		default:
			if err := syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
				t.Errorf("killing gunicorn's process group: %v", err)
			}
			<-g.exited
		}
		if t.Failed() {
			t.Logf("gunicorn output:\n%s", g.out.String())
		}
	})
	return g
}

// wait waits up to timeout for the master to exit and returns its exit code.
func (g *gunicorn) wait(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-g.exited:
	case <-time.After(timeout):
		t.Fatalf("gunicorn pid %d did not exit within %v", g.cmd.Process.Pid, timeout)
	}
	var exit *exec.ExitError
	if g.err != nil && !errors.As(g.err, &exit) {
		t.Fatalf("waiting for gunicorn: %v", g.err)
	}
	return g.cmd.ProcessState.ExitCode()
}

// stop sends TERM to the master and expects a clean exit.
func (g *gunicorn) stop(t *testing.T) {
	t.Helper()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("TERM to gunicorn: %v", err)
	}
	if code := g.wait(t, 15*time.Second); code != 0 {
		t.Fatalf("gunicorn exited %d after TERM, want 0", code)
	}
}

func listenTCP(t *testing.T) *net.TCPListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listening: %v", err)
	}
	t.Cleanup(func() { closeListener(t, l) })
	return l.(*net.TCPListener)
}

func TestVenv(t *testing.T) {
	venv := Venv(t)
	if again := Venv(t); again != venv {
		t.Errorf("second Venv = %s, want the first %s", again, venv)
	}
	if !filepath.IsAbs(venv) {
		t.Errorf("Venv = %s, not absolute", venv)
	}
	script := filepath.Join(venv, "bin", "gunicorn")
	st, err := os.Stat(script)
	if err != nil {
		t.Fatalf("stat entry script: %v", err)
	}
	if st.Mode().Perm() != 0o755 {
		t.Errorf("%s mode %v, want 0755", script, st.Mode().Perm())
	}
	b, err := os.ReadFile(script)
	if err != nil {
		t.Fatalf("reading entry script: %v", err)
	}
	want := "#!" + venv + "/bin/python\nimport sys\nfrom gunicorn.app.wsgiapp import run\nsys.exit(run())\n"
	if string(b) != want {
		t.Errorf("entry script:\n%s\nwant:\n%s", b, want)
	}
	out, err := exec.Command(script, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --version: %v: %s", script, err, out)
	}
	if !strings.Contains(string(out), "20.1.0") {
		t.Errorf("%s --version = %q, want Debian's 20.1.0", script, out)
	}
	out, err = exec.Command(filepath.Join(venv, "bin", "python"), "-c", "import gunicorn, flask; print(gunicorn.__file__)").CombinedOutput()
	if err != nil {
		t.Fatalf("importing from the virtualenv: %v: %s", err, out)
	}
	if !strings.HasPrefix(string(out), "/usr/lib/python3/dist-packages/gunicorn/") {
		t.Errorf("virtualenv imports gunicorn from %q, want Debian's dist-packages", out)
	}
}

// TestGunicornServesRelease runs Gunicorn from the virtualenv the way the
// supervisor does (an inherited socket, no --bind), checks an OK release
// answers, stops it with TERM and checks nothing is left.
func TestGunicornServesRelease(t *testing.T) {
	t.Parallel()
	venv := Venv(t)
	dir := t.TempDir()
	WriteRelease(t, dir, Release{Version: "v1.2", Variant: OK})
	l := listenTCP(t)
	addr := l.Addr().String()
	key, value := MarkEnv(t)
	g := startGunicorn(t, venv, dir, l, "2", key+"="+value)
	// Gunicorn now holds its own copy of the socket.
	if err := l.Close(); err != nil {
		t.Fatalf("closing the test's listener: %v", err)
	}

	WaitFor(t, 20*time.Second, "gunicorn to answer GET /", func() bool {
		status, _, err := Get(addr, "/")
		return err == nil && status == 200
	})
	checkGet(t, addr, "/", 200, "version=v1.2\n")
	checkGet(t, addr, "/healthz", 200, "ok")
	status, body, err := Get(addr, "/pid")
	if err != nil || status != 200 {
		t.Fatalf("GET /pid = %d %q, %v", status, body, err)
	}
	pid, ppid, err := ParsePID(body)
	if err != nil {
		t.Fatal(err)
	}
	if ppid != g.cmd.Process.Pid || pid == ppid {
		t.Errorf("GET /pid = pid %d ppid %d; want a worker of master %d", pid, ppid, g.cmd.Process.Pid)
	}
	if left := Leftovers(value); len(left) != 3 {
		t.Errorf("Leftovers while running = %v, want the master and 2 workers", left)
	}

	g.stop(t)
	AssertNoLeftovers(t, value, 5*time.Second)
}

// TestVariants checks that each release variant behaves as documented, over
// TCP and over a Unix socket.
func TestVariants(t *testing.T) {
	t.Parallel()
	venv := Venv(t)
	tests := []struct {
		variant Variant
		unix    bool
		check   func(t *testing.T, get func(path string) (int, string, error))
	}{
		{OK, true, func(t *testing.T, get func(string) (int, string, error)) {
			checkFunc(t, get, "/", 200, "version=v7\n")
			checkFunc(t, get, "/healthz", 200, "ok")
		}},
		{Health500, false, func(t *testing.T, get func(string) (int, string, error)) {
			checkFunc(t, get, "/", 200, "version=v7\n")
			checkFunc(t, get, "/healthz", 500, "unhealthy")
		}},
		{All500, false, func(t *testing.T, get func(string) (int, string, error)) {
			checkFunc(t, get, "/", 500, "release v7 fails (testenv All500)\n")
			checkFunc(t, get, "/healthz", 500, "release v7 fails (testenv All500)\n")
		}},
		{Slow, false, func(t *testing.T, get func(string) (int, string, error)) {
			start := time.Now()
			checkFunc(t, get, "/?ms=400", 200, "version=v7\n")
			if d := time.Since(start); d < 400*time.Millisecond {
				t.Errorf("GET /?ms=400 took %v, want at least 400ms", d)
			}
			checkFunc(t, get, "/healthz", 200, "ok")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.variant.String(), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			WriteRelease(t, dir, Release{Version: "v7", Variant: tt.variant})
			key, value := MarkEnv(t)
			var l net.Listener
			var get func(string) (int, string, error)
			if tt.unix {
				sock := filepath.Join(ShortTempDir(t), "s.sock")
				ul, err := net.Listen("unix", sock)
				if err != nil {
					t.Fatalf("listening on %s: %v", sock, err)
				}
				// Gunicorn unlinks the path when it exits and fails if it is gone.
				ul.(*net.UnixListener).SetUnlinkOnClose(false)
				t.Cleanup(func() { closeListener(t, ul) })
				l = ul
				get = func(path string) (int, string, error) { return GetUnix(sock, path) }
			} else {
				tl := listenTCP(t)
				l = tl
				addr := tl.Addr().String()
				get = func(path string) (int, string, error) { return Get(addr, path) }
			}
			g := startGunicorn(t, venv, dir, l, "1", key+"="+value)
			WaitFor(t, 20*time.Second, "gunicorn to answer GET /", func() bool {
				status, _, err := get("/")
				return err == nil && (status == 200 || tt.variant == All500)
			})
			tt.check(t, get)
			g.stop(t)
			AssertNoLeftovers(t, value, 5*time.Second)
		})
	}

	t.Run("HangAtBoot", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		WriteRelease(t, dir, Release{Version: "v7", Variant: HangAtBoot})
		key, value := MarkEnv(t)
		l := listenTCP(t)
		addr := l.Addr().String()
		g := startGunicorn(t, venv, dir, l, "1", key+"="+value)
		WaitFor(t, 20*time.Second, "gunicorn's worker to be forked", func() bool {
			return len(Leftovers(value)) == 2
		})
		// The kernel accepts the connection into the backlog, but no worker
		// ever reads it: Get times out.
		if status, body, err := Get(addr, "/"); err == nil {
			t.Errorf("GET / on a hanging release = %d %q, want a timeout", status, body)
		}
		g.stop(t)
		AssertNoLeftovers(t, value, 5*time.Second)
	})
}

// TestImportErrorStopsGunicorn records how Debian's Gunicorn exits when the
// app module raises at import: the worker exits 3 (boot error) or 4 (app
// import error) and the master halts with the same code.
func TestImportErrorStopsGunicorn(t *testing.T) {
	t.Parallel()
	venv := Venv(t)
	dir := t.TempDir()
	WriteRelease(t, dir, Release{Version: "bad", Variant: ImportError})
	key, value := MarkEnv(t)
	g := startGunicorn(t, venv, dir, listenTCP(t), "1", key+"="+value)
	code := g.wait(t, 30*time.Second)
	t.Logf("gunicorn exited %d on a release that raises at import", code)
	if code != 3 && code != 4 {
		t.Errorf("gunicorn exit code %d, want 3 or 4\n%s", code, g.out.String())
	}
	if !strings.Contains(g.out.String(), "fails at import (testenv ImportError)") {
		t.Errorf("gunicorn output does not show the RuntimeError:\n%s", g.out.String())
	}
	AssertNoLeftovers(t, value, 5*time.Second)
}

func TestMakeReleaseTree(t *testing.T) {
	root := t.TempDir()
	current, dirs := MakeReleaseTree(t, root, Release{Version: "1.0"}, Release{Version: "1.1", Variant: Health500})
	want := []string{filepath.Join(root, "releases", "0-1.0"), filepath.Join(root, "releases", "1-1.1")}
	if len(dirs) != len(want) || dirs[0] != want[0] || dirs[1] != want[1] {
		t.Fatalf("dirs = %v, want %v", dirs, want)
	}
	if current != filepath.Join(root, "current") {
		t.Errorf("current = %s", current)
	}
	checkLink(t, current, dirs[0])
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "app.py")); err != nil {
			t.Errorf("release app: %v", err)
		}
	}
	PointCurrent(t, current, dirs[1])
	checkLink(t, current, dirs[1])
}

func TestWriteReleaseSource(t *testing.T) {
	for _, v := range []Variant{OK, ImportError, Health500, HangAtBoot, Slow, All500} {
		src, err := releaseSource(Release{Version: "2.0", Variant: v})
		if err != nil {
			t.Fatalf("%v: %v", v, err)
		}
		golden := filepath.Join("testdata", "app_"+v.String()+".py")
		if os.Getenv("UPDATE_GOLDEN") == "1" {
			if err := os.WriteFile(golden, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("reading golden file (UPDATE_GOLDEN=1 writes it): %v", err)
		}
		if src != string(want) {
			t.Errorf("%v source differs from %s:\n%s", v, golden, src)
		}
	}
	for _, bad := range []Release{{Version: ""}, {Version: "a b"}, {Version: `x"y`}, {Version: "1", Variant: Variant(99)}} {
		if _, err := releaseSource(bad); err == nil {
			t.Errorf("releaseSource(%+v) succeeded, want an error", bad)
		}
	}
}

func TestParsePID(t *testing.T) {
	tests := []struct {
		body      string
		pid, ppid int
		ok        bool
	}{
		{"pid=12 ppid=3\n", 12, 3, true},
		{"pid=12", 0, 0, false},
		{"version=1\n", 0, 0, false},
	}
	for _, tt := range tests {
		pid, ppid, err := ParsePID(tt.body)
		if (err == nil) != tt.ok || pid != tt.pid || ppid != tt.ppid {
			t.Errorf("ParsePID(%q) = %d, %d, %v", tt.body, pid, ppid, err)
		}
	}
}

func TestWaitFor(t *testing.T) {
	n := 0
	start := time.Now()
	WaitFor(t, 5*time.Second, "three polls", func() bool { n++; return n == 3 })
	if d := time.Since(start); d > time.Second {
		t.Errorf("three polls took %v", d)
	}
	if Poll(50*time.Millisecond, func() bool { return false }) {
		t.Error("poll of a false condition returned true")
	}
}

// TestLeftovers starts a marked process, sees it, and lets AssertNoLeftovers
// (on a throwaway testing.TB) kill it.
func TestLeftovers(t *testing.T) {
	key, value := MarkEnv(t)
	if _, other := MarkEnv(t); other == value {
		t.Fatalf("two MarkEnv calls returned the same value %s", value)
	}
	cmd := exec.Command("/bin/sleep", "3600")
	cmd.Env = append(os.Environ(), key+"="+value)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
			t.Errorf("killing sleep: %v", err)
		}
	})
	// Start returns once execve closed the child's close-on-exec fds, which
	// is before the kernel set up the new environment: poll.
	var got []int
	WaitFor(t, 5*time.Second, "Leftovers to list the sleep", func() bool {
		got = Leftovers(value)
		return len(got) == 1 && got[0] == cmd.Process.Pid
	})
	rec := &recordingTB{TB: t}
	AssertNoLeftovers(rec, value, 50*time.Millisecond)
	if len(rec.errors) == 0 || !strings.Contains(rec.errors[0], "/bin/sleep 3600") {
		t.Errorf("AssertNoLeftovers reported %q, want the sleep's pid and cmdline", rec.errors)
	}
	select {
	case err := <-exited:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Errorf("sleep ended with %v, want SIGKILL", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("sleep was not killed")
	}
	if got = Leftovers(value); len(got) != 0 {
		t.Errorf("Leftovers after kill = %v", got)
	}
}

// recordingTB records Errorf calls instead of failing the test.
type recordingTB struct {
	testing.TB
	errors []string
}

func (r *recordingTB) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

func (r *recordingTB) Helper() {}

func checkGet(t *testing.T, addr, path string, wantStatus int, wantBody string) {
	t.Helper()
	checkFunc(t, func(p string) (int, string, error) { return Get(addr, p) }, path, wantStatus, wantBody)
}

func checkFunc(t *testing.T, get func(string) (int, string, error), path string, wantStatus int, wantBody string) {
	t.Helper()
	status, body, err := get(path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	if status != wantStatus || body != wantBody {
		t.Errorf("GET %s = %d %q, want %d %q", path, status, body, wantStatus, wantBody)
	}
}

func checkLink(t *testing.T, link, want string) {
	t.Helper()
	got, err := os.Readlink(link)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s -> %s, want %s", link, got, want)
	}
}

// closeListener closes l unless the test already did.
func closeListener(t *testing.T, l net.Listener) {
	if err := l.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		t.Errorf("closing listener: %v", err)
	}
}

// TestContribExample runs the demo app and worker of contrib/example (used by
// make demo) from the test virtualenv.
func TestContribExample(t *testing.T) {
	t.Parallel()
	venv := Venv(t)
	example, err := filepath.Abs(filepath.Join("..", "..", "contrib", "example"))
	if err != nil {
		t.Fatal(err)
	}
	key, value := MarkEnv(t)
	mark := key + "=" + value

	l := listenTCP(t)
	addr := l.Addr().String()
	g := startGunicorn(t, venv, example, l, "2", mark, "APP_VERSION=9", "PYTHONDONTWRITEBYTECODE=1")
	WaitFor(t, 20*time.Second, "the demo app to answer GET /", func() bool {
		status, _, err := Get(addr, "/")
		return err == nil && status == 200
	})
	status, body, err := Get(addr, "/")
	if err != nil || status != 200 || !strings.HasPrefix(body, "Hello from the supervisor demo: version=9 pid=") {
		t.Errorf("GET / = %d %q, %v", status, body, err)
	}
	checkGet(t, addr, "/healthz", 200, "ok\n")
	g.stop(t)

	out := &SyncBuffer{}
	worker := exec.Command(filepath.Join(venv, "bin", "python"), filepath.Join(example, "worker.py"))
	worker.Env = append(os.Environ(), mark, "PYTHONDONTWRITEBYTECODE=1")
	worker.Stdout, worker.Stderr = out, out
	if err := worker.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- worker.Wait() }()
	WaitFor(t, 10*time.Second, "the worker's first heartbeat", func() bool {
		return strings.Contains(out.String(), "heartbeat 1")
	})
	if err := worker.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("worker after TERM: %v\n%s", err, out.String())
		}
	case <-time.After(10 * time.Second):
		if err := worker.Process.Kill(); err != nil {
			t.Errorf("killing worker: %v", err)
		}
		t.Fatalf("worker ignored TERM:\n%s", out.String())
	}
	AssertNoLeftovers(t, value, 5*time.Second)
}

// TestProcReaders checks the /proc readers on this test process and a
// listener and a Unix socket it binds.
func TestProcReaders(t *testing.T) {
	self := os.Getpid()
	st, err := ReadStat(self)
	if err != nil || st.PPID != os.Getppid() || st.State == 'Z' || st.Comm == "" {
		t.Fatalf("ReadStat(self) = %+v, %v; want ppid %d", st, err, os.Getppid())
	}
	if env, err := Environ(self); err != nil || len(env) == 0 {
		t.Errorf("Environ(self) = %d variables, %v", len(env), err)
	}
	ln := listenTCP(t)
	defer closeListener(t, ln)
	ino, err := FindSocket("/proc/net/tcp", ln.Addr().String(), TCPListen)
	if err != nil {
		t.Fatal(err)
	}
	fds, err := FDs(self)
	if err != nil {
		t.Fatal(err)
	}
	held := false
	for _, target := range fds {
		if k, n, ok := KindInode(target); ok && k == "socket" && n == ino {
			held = true
		}
	}
	if !held {
		t.Errorf("listener inode %d on %s not among this process's fds %v", ino, ln.Addr(), fds)
	}
	path := filepath.Join(ShortTempDir(t), "u.sock")
	uln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer closeListener(t, uln)
	names, err := UnixListeners()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, name := range names {
		found = found || name == path
	}
	if !found {
		t.Errorf("UnixListeners has no %s", path)
	}
}
