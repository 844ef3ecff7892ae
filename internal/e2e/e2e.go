// Package e2e drives the real supervisor and supctl binaries for end-to-end
// tests: it builds them once per test binary, starts the supervisor on a
// configuration written to a temporary directory, talks to it through its
// control socket, and generates HTTP load (hey, or an in-process loader that
// records every failure by kind and every answer by body).
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { defer e2e.Cleanup(); m.Run() }
package e2e

import (
	"context"
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

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/testenv"
)

// Supervisor is a running supervisor process under test.
type Supervisor struct {
	t testing.TB
	// Bin is the supervisor binary it runs; Supctl the supctl binary.
	Bin, Supctl string
	// Dir is the test's directory (@DIR@); Config the configuration file
	// there, Socket the control socket.
	Dir, Config, Socket string
	// Cmd is the started process: the supervisor, or Options.Wrap's first
	// program.
	Cmd *exec.Cmd
	// Mark is the value of testenv.MarkKey in the supervisor's environment.
	Mark string
	venv string
	out  *testenv.SyncBuffer
	done chan struct{}
	exit error
}

// Options for Start.
type Options struct {
	// Config is the TOML text. "@DIR@" is replaced by the test's directory,
	// "@VENV@" by the shared virtualenv, "@SOCK@" by the control socket path,
	// "@TESTBIN@" by the test binary (for apps that re-execute it).
	Config string
	// Bin is the supervisor binary to run ("@DIR@" is replaced); "" runs
	// the one Binaries builds.
	Bin string
	// Env is added to the supervisor's environment.
	Env []string
	// Wrap, when set, prefixes the command (e.g. unshare --pid --fork --mount-proc).
	Wrap []string
	// ExtraFiles are passed as fds 3.. (see exec.Cmd.ExtraFiles).
	ExtraFiles []*os.File
	// NoWait skips waiting for the control socket.
	NoWait bool
	// Setup runs before the supervisor starts, with the test directory (to
	// write apps and releases, or install Bin, there).
	Setup func(dir string)
}

// Expand replaces the placeholders of Options.Config.
func Expand(text, dir, venv, sock string) string {
	r := strings.NewReplacer("@DIR@", dir, "@VENV@", venv, "@SOCK@", sock)
	return r.Replace(text)
}

// Start writes the configuration and starts the supervisor. The test's
// cleanup stops it (TERM, then KILL after 60 s) and checks no process of it
// is left behind.
func Start(t testing.TB, opts Options) *Supervisor {
	t.Helper()
	dir := testenv.ShortTempDir(t)
	s := &Supervisor{t: t, Supctl: buildOnce(t, "supctl", "./cmd/supctl", ""), Dir: dir, Config: filepath.Join(dir, "supervisor.toml"),
		Socket: filepath.Join(dir, "ctl.sock"), venv: testenv.Venv(t)}
	if opts.Bin != "" {
		s.Bin = strings.ReplaceAll(opts.Bin, "@DIR@", dir)
	} else {
		s.Bin = SupervisorVersion(t, "")
	}
	if opts.Setup != nil {
		opts.Setup(dir)
	}
	s.WriteConfig(opts.Config)
	_, s.Mark = testenv.MarkEnv(t)
	s.launch(opts)
	return s
}

// launch starts s.Bin on s.Config with s.Mark in its environment,
// registers the clean-up that stops it (TERM, then KILL after 60 s) and
// checks that no process with the mark is left, and (unless opts.NoWait)
// waits until the control socket accepts.
func (s *Supervisor) launch(opts Options) {
	t := s.t
	t.Helper()
	s.out, s.done = &testenv.SyncBuffer{}, make(chan struct{})
	argv := append(append([]string{}, opts.Wrap...), s.Bin, "-c", s.Config)
	s.Cmd = exec.Command(argv[0], argv[1:]...)
	s.Cmd.Env = append(append(hermeticEnv(), testenv.MarkKey+"="+s.Mark), opts.Env...)
	s.Cmd.ExtraFiles = opts.ExtraFiles
	s.Cmd.Stdout = s.out
	s.Cmd.Stderr = s.out
	if err := s.Cmd.Start(); err != nil {
		t.Fatalf("start supervisor: %v", err)
	}
	go func() {
		s.exit = s.Cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Stop(syscall.SIGTERM, 60*time.Second)
		if t.Failed() {
			t.Logf("supervisor output:\n%s", s.Output())
		}
		testenv.AssertNoLeftovers(t, s.Mark, 10*time.Second)
	})
	if !opts.NoWait {
		testenv.WaitFor(t, 30*time.Second, "control socket "+s.Socket, func() bool {
			if s.Exited() {
				t.Fatalf("supervisor exited early (%v):\n%s", s.exit, s.Output())
			}
			// The socket file exists from bind(2), before listen(2), and a
			// dead predecessor's stays: only a connection says the control
			// server accepts.
			c, err := net.Dial("unix", s.Socket)
			if err != nil {
				return false
			}
			_ = c.Close() // a probe: nothing was sent
			return true
		})
	}
}

// hermeticEnv is the test's environment without systemd's protocol
// variables (LISTEN_*, NOTIFY_SOCKET, WATCHDOG_*), which belong to whatever
// runs the tests: a test that wants them passes its own in Options.Env.
func hermeticEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "LISTEN_") && k != "NOTIFY_SOCKET" && !strings.HasPrefix(k, "WATCHDOG_") {
			env = append(env, kv)
		}
	}
	return env
}

// WriteConfig expands the placeholders of text (see Options.Config), adds
// the test mark to [supervisor] pass_env (testenv.PassMark) and writes it
// over the configuration file, failing the test if it cannot.
func (s *Supervisor) WriteConfig(text string) {
	s.t.Helper()
	self, err := os.Executable()
	if err != nil {
		s.t.Fatalf("e2e: test binary: %v", err)
	}
	text = testenv.PassMark(strings.ReplaceAll(Expand(text, s.Dir, s.venv, s.Socket), "@TESTBIN@", self))
	if err := os.WriteFile(s.Config, []byte(text), 0o644); err != nil {
		s.t.Fatalf("e2e: writing %s: %v", s.Config, err)
	}
}

// PID is the pid of Cmd: the supervisor's own unless Options.Wrap is set.
// It never changes, as a self-upgrade execs in place.
func (s *Supervisor) PID() int { return s.Cmd.Process.Pid }

// Output returns everything the supervisor wrote so far.
func (s *Supervisor) Output() string { return s.out.String() }

// WaitOutput polls until the supervisor's output contains substr, failing
// the test after timeout.
func (s *Supervisor) WaitOutput(substr string, timeout time.Duration) {
	s.t.Helper()
	testenv.WaitFor(s.t, timeout, fmt.Sprintf("%q in the supervisor's output", substr), func() bool {
		return strings.Contains(s.Output(), substr)
	})
}

// Exited reports whether the supervisor process has exited.
func (s *Supervisor) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the supervisor to exit and returns its exit
// status (-1 if it did not exit in time).
func (s *Supervisor) Wait(timeout time.Duration) int {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-s.done:
		return exitStatus(s.exit)
	case <-t.C:
		return -1
	}
}

// ExitStatus is the supervisor's exit status (128+N for signal N) once it
// has exited, -1 while it runs.
func (s *Supervisor) ExitStatus() int {
	if !s.Exited() {
		return -1
	}
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

// Stop sends sig and waits up to timeout for the exit, then KILLs. It
// returns the exit status.
func (s *Supervisor) Stop(sig syscall.Signal, timeout time.Duration) int {
	if s.Exited() {
		return exitStatus(s.exit)
	}
	_ = s.Cmd.Process.Signal(sig) // it may have exited meanwhile
	if code := s.Wait(timeout); code != -1 {
		return code
	}
	s.t.Errorf("supervisor did not exit within %s of %s; killing", timeout, sig)
	_ = s.Cmd.Process.Kill() // last resort
	<-s.done
	return exitStatus(s.exit)
}

// Client returns a control client for the supervisor's socket.
func (s *Supervisor) Client() *control.Client { return control.NewClient(s.Socket) }

// SupctlRun runs the supctl binary against this supervisor and returns its
// combined output and exit status.
func (s *Supervisor) SupctlRun(args ...string) (string, int) {
	cmd := exec.Command(s.Supctl, append([]string{"-s", s.Socket}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), exitStatus(err)
}

// Status returns the status of every app (fails the test if it cannot).
func (s *Supervisor) Status() *control.StatusResponse {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.Client().Status(ctx, "")
	if err != nil {
		s.t.Fatalf("status: %v", err)
	}
	return st
}

// FindApp returns app name's snapshot from st, failing the test when st has
// no such app.
func FindApp(t testing.TB, st *control.StatusResponse, name string) control.AppStatus {
	t.Helper()
	for _, a := range st.Apps {
		if a.Name == name {
			return a
		}
	}
	t.Fatalf("status has no app %s", name)
	return control.AppStatus{}
}

// WaitRunning polls until every app of names runs with a master (and is
// healthy where checked) and returns that status, or fails the test after
// timeout.
func (s *Supervisor) WaitRunning(timeout time.Duration, names ...string) *control.StatusResponse {
	s.t.Helper()
	var last *control.StatusResponse
	testenv.WaitFor(s.t, timeout, fmt.Sprintf("apps %v running", names), func() bool {
		if s.Exited() {
			s.t.Fatalf("supervisor exited (%v):\n%s", s.exit, s.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := s.Client().Status(ctx, "")
		if err != nil {
			return false
		}
		last = st
		for _, n := range names {
			a := FindApp(s.t, st, n)
			if a.State != control.StateRunning || a.MasterPID == 0 || (a.HealthChecked && !a.Healthy) {
				return false
			}
		}
		return true
	})
	return last
}

// App returns an app's snapshot (fails the test if it cannot).
func (s *Supervisor) App(name string) control.AppStatus {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.Client().Status(ctx, name)
	if err != nil || len(st.Apps) != 1 {
		s.t.Fatalf("status %s: %v", name, err)
	}
	return st.Apps[0]
}

// WaitState polls until app is in state (and healthy, for running apps
// with a check) or fails the test after timeout.
func (s *Supervisor) WaitState(name string, state control.AppState, timeout time.Duration) control.AppStatus {
	s.t.Helper()
	var last control.AppStatus
	testenv.WaitFor(s.t, timeout, fmt.Sprintf("app %s %s", name, state), func() bool {
		if s.Exited() {
			s.t.Fatalf("supervisor exited (%v):\n%s", s.exit, s.Output())
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		st, err := s.Client().Status(ctx, name)
		if err != nil || len(st.Apps) != 1 {
			return false
		}
		last = st.Apps[0]
		return last.State == state && (state != control.StateRunning || !last.HealthChecked || last.Healthy)
	})
	return last
}

// Addr returns the bound address of app's first listener.
func (s *Supervisor) Addr(name string) string {
	s.t.Helper()
	a := s.App(name)
	if len(a.Listeners) == 0 {
		s.t.Fatalf("app %s has no listener", name)
	}
	return a.Listeners[0].Bound
}

// Runs is how many times a repeated end-to-end scenario runs: full where
// E2E_FULL=1 (the counts docs/reliability.md reports), else short, which
// keeps `make test` within its time on two cores.
func Runs(full, short int) int {
	if os.Getenv("E2E_FULL") == "1" {
		return full
	}
	return short
}
