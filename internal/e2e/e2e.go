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
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/testenv"
)

var (
	buildMu  sync.Mutex
	buildDir string
	buildErr error
)

// Binaries builds cmd/supervisor and cmd/supctl once per test binary and
// returns their paths.
func Binaries(t testing.TB) (supervisor, supctl string) {
	t.Helper()
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir == "" && buildErr == nil {
		buildDir, buildErr = build()
	}
	if buildErr != nil {
		t.Fatalf("build binaries: %v", buildErr)
	}
	return filepath.Join(buildDir, "supervisor"), filepath.Join(buildDir, "supctl")
}

func build() (string, error) {
	dir, err := os.MkdirTemp("", "e2e-bin-")
	if err != nil {
		return "", err
	}
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "./cmd/supervisor", "./cmd/supctl")
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return dir, nil
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the module root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..")), nil
}

// Cleanup removes the built binaries and the shared virtualenv.
func Cleanup() {
	buildMu.Lock()
	defer buildMu.Unlock()
	if buildDir != "" {
		if err := os.RemoveAll(buildDir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e cleanup:", err)
		}
		buildDir = ""
	}
	testenv.Cleanup()
}

// Supervisor is a running supervisor process under test.
type Supervisor struct {
	t      testing.TB
	Bin    string
	Supctl string
	Dir    string
	Config string
	Socket string
	Cmd    *exec.Cmd
	Mark   string
	out    *syncBuffer
	done   chan struct{}
	exit   error
}

// Options for Start.
type Options struct {
	// Config is the TOML text. "@DIR@" is replaced by the test's directory,
	// "@VENV@" by the shared virtualenv, "@SOCK@" by the control socket path.
	Config string
	// Env is added to the supervisor's environment.
	Env []string
	// Wrap, when set, prefixes the command (e.g. unshare --pid --fork --mount-proc).
	Wrap []string
	// NoWait skips waiting for the control socket.
	NoWait bool
	// Setup runs before the supervisor starts, with the test directory (to
	// write apps and releases there).
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
	sup, ctl := Binaries(t)
	venv := testenv.Venv(t)
	dir := testenv.ShortTempDir(t)
	sock := filepath.Join(dir, "ctl.sock")
	cfg := filepath.Join(dir, "supervisor.toml")
	if opts.Setup != nil {
		opts.Setup(dir)
	}
	if err := os.WriteFile(cfg, []byte(testenv.PassMark(Expand(opts.Config, dir, venv, sock))), 0o644); err != nil {
		t.Fatal(err)
	}
	key, mark := testenv.MarkEnv(t)
	s := &Supervisor{t: t, Bin: sup, Supctl: ctl, Dir: dir, Config: cfg, Socket: sock, Mark: mark, out: &syncBuffer{}, done: make(chan struct{})}
	argv := append(append([]string{}, opts.Wrap...), sup, "-c", cfg)
	s.launch(argv, append([]string{key + "=" + mark}, opts.Env...))
	t.Cleanup(func() {
		s.Stop(syscall.SIGTERM, 60*time.Second)
		if t.Failed() {
			t.Logf("supervisor output:\n%s", s.Output())
		}
		testenv.AssertNoLeftovers(t, mark, 10*time.Second)
	})
	if !opts.NoWait {
		testenv.WaitFor(t, 30*time.Second, "control socket "+sock, func() bool {
			if s.Exited() {
				t.Fatalf("supervisor exited early (%v):\n%s", s.exit, s.Output())
			}
			_, err := os.Stat(sock)
			return err == nil
		})
	}
	return s
}

// Output returns everything the supervisor wrote so far.
func (s *Supervisor) Output() string { return s.out.String() }

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

// Supctl runs the supctl binary against this supervisor and returns its
// combined output and exit status.
func (s *Supervisor) SupctlRun(args ...string) (string, int) {
	cmd := exec.Command(s.Supctl, append([]string{"-s", s.Socket}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), exitStatus(err)
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

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
