package supctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

// mixedBackend has a running app, a stopped one and a start that fails
// with an output tail; it resolves group:all-web and sends signals.
type mixedBackend struct {
	backend
	signals chan unix.Signal
}

func (mixedBackend) Status() []control.AppStatus {
	return []control.AppStatus{
		{Name: "web", State: control.StateRunning, MasterPID: 4242},
		{Name: "crashy", State: control.StateBackoff},
	}
}

func (b mixedBackend) Resolve(targets []string) ([]string, error) {
	var out []string
	for _, t := range targets {
		switch t {
		case "all":
			out = append(out, "web", "crashy")
		case "web", "crashy":
			out = append(out, t)
		default:
			return nil, &control.Error{Code: control.CodeNotFound, Err: &os.PathError{Op: "resolve", Path: t, Err: os.ErrNotExist}}
		}
	}
	return out, nil
}

func (b mixedBackend) ActMany(_ context.Context, verb string, targets []string) ([]control.AppResult, error) {
	names, err := b.Resolve(targets)
	if err != nil {
		return nil, err
	}
	var out []control.AppResult
	for _, n := range names {
		if n == "crashy" && verb != "stop" {
			out = append(out, control.AppResult{App: n, Error: "app crashy: start failed: exited before start_settle (1s) passed: exit 3", Code: control.CodeFailed, Tail: []string{"boom: no database"}})
			continue
		}
		out = append(out, control.AppResult{App: n, OK: true})
	}
	return out, nil
}

func (b mixedBackend) SignalApps(_ context.Context, names []string, sig unix.Signal) []control.AppResult {
	var out []control.AppResult
	for _, n := range names {
		if n != "web" {
			out = append(out, control.AppResult{App: n, Error: "not running", Code: control.CodeNotRunning})
			continue
		}
		b.signals <- sig
		out = append(out, control.AppResult{App: n, OK: true, PID: 4242})
	}
	return out
}

// TestVerbExitCodes: the exit status and output of each verb against a
// supervisor with a running app (web) and one whose start fails (crashy).
func TestVerbExitCodes(t *testing.T) {
	b := mixedBackend{signals: make(chan unix.Signal, 8)}
	serveBackend(t, b)
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"status", "web"}, 0, "running"},
		{[]string{"status", "crashy"}, 3, "backoff"},
		{[]string{"status"}, 3, "crashy"},
		{[]string{"status", "web", "crashy"}, 3, "web"},
		{[]string{"status", "nope"}, 4, ""},
		{[]string{"start", "web"}, 0, "start web: ok"},
		{[]string{"start", "crashy"}, 1, "  | boom: no database"},
		{[]string{"restart", "crashy"}, 1, "exit 3"},
		{[]string{"start", "all"}, 1, "start web: ok"},
		{[]string{"stop", "crashy"}, 0, "stop crashy: ok"},
		{[]string{"signal", "web", "TTIN"}, 0, "signal TTIN web: ok (pid 4242)"},
		{[]string{"signal", "web", "sigttou"}, 0, "signal TTOU web: ok"},
		{[]string{"signal", "crashy", "HUP"}, 1, "not running"},
		{[]string{"signal", "web", "SEGV"}, 2, ""},
		{[]string{"signal", "web"}, 2, ""},
		{[]string{"pid"}, 0, ""},
		{[]string{"pid", "web"}, 0, "4242"},
		{[]string{"pid", "crashy"}, 3, "0"},
		{[]string{"pid", "nope"}, 1, ""},
		{[]string{"staus"}, 2, ""},
		{[]string{"logs", "--help"}, 0, "usage: supctl logs"},
		{[]string{"help", "signal"}, 0, "TTIN"},
		{[]string{"help", "nope"}, 2, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(tc.args, &out, &errb)
			if got := exitcode.Code(err); got != tc.code {
				t.Fatalf("exit %d, want %d (err %v, out %s)", got, tc.code, err, out.String())
			}
			if tc.out != "" && !strings.Contains(out.String(), tc.out) {
				t.Errorf("output %q lacks %q", out.String(), tc.out)
			}
		})
	}
	if got := <-b.signals; got != unix.SIGTTIN {
		t.Errorf("signal sent %v, want SIGTTIN", got)
	}
}

// TestUnknownVerbSuggests: a typo gets one line naming the closest verb,
// and no usage dump.
func TestUnknownVerbSuggests(t *testing.T) {
	var out, errb bytes.Buffer
	err := Run([]string{"staus"}, &out, &errb)
	if exitcode.Code(err) != ExitUsage || !strings.Contains(err.Error(), `did you mean "status"?`) {
		t.Fatalf("staus: %v, want a usage error suggesting status", err)
	}
	if out.Len()+errb.Len() != 0 {
		t.Errorf("staus printed %q %q, want only the one error line", out.String(), errb.String())
	}
}

// TestConfigSocket: -c reads control_socket from the configuration file,
// relative to its directory, and the default when the file sets none.
func TestConfigSocket(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ body, want string }{
		{"[supervisor]\ncontrol_socket = \"/run/x/c.sock\"\n[[app]]\nname = \"web\"\n", "/run/x/c.sock"},
		{"[supervisor]\ncontrol_socket = \"run/c.sock\"\n", filepath.Join(dir, "run/c.sock")},
		{"[[app]]\nname = \"web\"\n", control.DefaultSocket},
	} {
		path := filepath.Join(dir, "gunisup.toml")
		if err := os.WriteFile(path, []byte(tc.body), 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := socketPath("", path)
		if err != nil || got != tc.want {
			t.Errorf("socketPath -c with %q = %q, %v; want %q", tc.body, got, err, tc.want)
		}
	}
	if _, err := socketPath("", filepath.Join(dir, "absent.toml")); err == nil {
		t.Error("-c of a missing file: no error")
	}
	if _, err := socketPath("/a.sock", filepath.Join(dir, "gunisup.toml")); err == nil {
		t.Error("-s and -c together: no error")
	}
}

// TestConfigSocketConnects: `supctl -c FILE status` talks to the socket
// the file names.
func TestConfigSocketConnects(t *testing.T) {
	dir := serveBackend(t, backend{})
	conf := filepath.Join(dir, "gunisup.toml")
	if err := os.WriteFile(conf, []byte("[supervisor]\ncontrol_socket = \"c.sock\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SUPCTL_SOCKET", filepath.Join(dir, "absent.sock"))
	var out, errb bytes.Buffer
	if err := Run([]string{"-c", conf, "status", "web"}, &out, &errb); err != nil {
		t.Fatalf("-c %s status web: %v", conf, err)
	}
}

// TestPermissionHint: a socket the user may not connect to says how to
// get access.
func TestPermissionHint(t *testing.T) {
	dir := serveBackend(t, backend{})
	sock := filepath.Join(dir, "c.sock")
	if os.Geteuid() == 0 {
		// Root passes permission checks: the hint is checked on its error.
		err := classify(&control.ConnectError{Path: sock, Err: &os.SyscallError{Syscall: "connect", Err: unix.EACCES}})
		if !strings.Contains(err.Error(), "control_group") || exitcode.Code(err) != ExitNoConnect {
			t.Fatalf("EACCES: %v (exit %d), want the control_group hint and exit 3", err, exitcode.Code(err))
		}
		return
	}
	if err := os.Chmod(sock, 0); err != nil {
		t.Fatal(err)
	}
	err := Run([]string{"-s", sock, "restart", "web"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "control_group") {
		t.Fatalf("restart on an unreadable socket: %v, want the control_group hint", err)
	}
}

// TestOutputWording: a rolled-back reload says so once; a process app's
// WORKERS column is "-".
func TestOutputWording(t *testing.T) {
	serveBackend(t, workerBackend{})
	err := Run([]string{"reload", "worker"}, &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || strings.Count(strings.ReplaceAll(err.Error(), "_", " "), "rolled back") != 1 {
		t.Errorf("rolled-back reload: %v, want \"rolled back\" once", err)
	}
	var out bytes.Buffer
	PrintStatus(&out, []control.AppStatus{{Name: "sleeper", Kind: "process", State: control.StateRunning, MasterPID: 7}}, time.Now())
	if f := strings.Fields(strings.Split(out.String(), "\n")[1]); len(f) < 4 || f[3] != "-" {
		t.Errorf("process app's row %q: WORKERS is not -", out.String())
	}
}
