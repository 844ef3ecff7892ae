package pid1

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// activationConfig: one Gunicorn app on a socket passed by systemd; LISTEN
// is replaced by the listen address under test.
const activationConfig = `
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
listen = ["LISTEN"]
stop_timeout = "10s"
`

// activated is a supervisor started the way systemd starts a socket-activated
// service: the sockets as fds 3.., LISTEN_FDS, LISTEN_FDNAMES, and LISTEN_PID
// equal to its own pid (set by an exec shim, so Cmd.Process.Pid is the
// supervisor's pid).
type activated struct {
	cmd    *exec.Cmd
	out    *testenv.SyncBuffer
	socket string
	done   chan struct{}
	err    error
}

// startActivated starts the supervisor on activationConfig with listen
// address listen, passing files as fds 3.. named names (LISTEN_FDNAMES; no
// LISTEN_* at all when files is empty). Its cleanup TERMs it (KILL after
// 60 s) and asserts no process of it is left.
func startActivated(t *testing.T, listen string, files []*os.File, names string) *activated {
	t.Helper()
	sup, _ := e2e.Binaries(t)
	venv := testenv.Venv(t)
	dir := testenv.ShortTempDir(t)
	writeRelease(t, filepath.Join(dir, "app"), testenv.OK)
	sock := filepath.Join(dir, "ctl.sock")
	cfg := filepath.Join(dir, "supervisor.toml")
	text := testenv.PassMark(strings.Replace(e2e.Expand(activationConfig, dir, venv, sock), "LISTEN", listen, 1))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	key, mark := testenv.MarkEnv(t)
	a := &activated{out: &testenv.SyncBuffer{}, socket: sock, done: make(chan struct{})}
	a.cmd = exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`, sup, "-c", cfg)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(k, "LISTEN_") && k != "NOTIFY_SOCKET" && !strings.HasPrefix(k, "WATCHDOG_") {
			a.cmd.Env = append(a.cmd.Env, kv)
		}
	}
	a.cmd.Env = append(a.cmd.Env, key+"="+mark)
	if len(files) > 0 {
		a.cmd.Env = append(a.cmd.Env, "LISTEN_FDS="+strconv.Itoa(len(files)), "LISTEN_FDNAMES="+names)
	}
	a.cmd.ExtraFiles = files
	a.cmd.Stdout = a.out
	a.cmd.Stderr = a.out
	if err := a.cmd.Start(); err != nil {
		t.Fatalf("start supervisor: %v", err)
	}
	go func() {
		a.err = a.cmd.Wait()
		close(a.done)
	}()
	t.Cleanup(func() {
		if !a.exited() {
			if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
				t.Errorf("TERM supervisor: %v", err)
			}
			if a.wait(60*time.Second) == -1 {
				t.Errorf("supervisor did not exit within 60 s of TERM; killing it")
				_ = a.cmd.Process.Kill() // it may have exited meanwhile
				<-a.done
			}
		}
		if t.Failed() {
			t.Logf("supervisor output:\n%s", a.out.String())
		}
		testenv.AssertNoLeftovers(t, mark, 10*time.Second)
	})
	return a
}

func (a *activated) exited() bool {
	select {
	case <-a.done:
		return true
	default:
		return false
	}
}

// wait returns the exit status (128+N after signal N), or -1 if the
// supervisor is still running after timeout.
func (a *activated) wait(timeout time.Duration) int {
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case <-a.done:
	case <-tm.C:
		return -1
	}
	var ee *exec.ExitError
	switch {
	case a.err == nil:
		return 0
	case errors.As(a.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal())
		}
		return ee.ExitCode()
	}
	return -1
}

// status asks the supervisor for app's status, failing the test if it cannot.
func (a *activated) status(t *testing.T, app string) *control.StatusResponse {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := control.NewClient(a.socket).Status(ctx, app)
	if err != nil || len(st.Apps) != 1 {
		t.Fatalf("status %s: %v", app, err)
	}
	return st
}

// passedSocket binds a TCP listener on 127.0.0.1:0 the way a .socket unit
// does and returns it as a file (to pass as fd 3), its port and its inode.
func passedSocket(t *testing.T) (*os.File, int, uint64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil { // f is a dup: the socket stays open
		t.Fatal(err)
	}
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		t.Fatalf("stat of the passed socket: %T", fi.Sys())
	}
	return f, port, st.Ino
}

// TestSocketActivation: with listen = ["systemd:web"], the app serves on
// the very socket systemd passed (same inode, one LISTEN entry for the
// port: nothing else bound it), the supervisor took it because LISTEN_PID is
// its own pid, and no LISTEN_* variable reaches Gunicorn.
func TestSocketActivation(t *testing.T) {
	f, port, ino := passedSocket(t)
	a := startActivated(t, "systemd:web", []*os.File{f}, "web")
	if err := f.Close(); err != nil { // the supervisor holds its own copy now
		t.Fatal(err)
	}
	var web control.AppStatus
	testenv.WaitFor(t, 90*time.Second, "app web running", func() bool {
		if a.exited() {
			t.Fatalf("supervisor exited (%v):\n%s", a.err, a.out.String())
		}
		if _, err := os.Stat(a.socket); err != nil {
			return false
		}
		web = a.status(t, "web").Apps[0]
		return web.State == control.StateRunning
	})
	st := a.status(t, "web")
	if st.Supervisor.PID != a.cmd.Process.Pid {
		t.Errorf("supervisor pid %d, want the exec'd pid %d", st.Supervisor.PID, a.cmd.Process.Pid)
	}
	want := "127.0.0.1:" + strconv.Itoa(port)
	if len(web.Listeners) != 1 || web.Listeners[0].Bound != want || web.Listeners[0].Address != "systemd:web" {
		t.Errorf("listeners %+v, want one systemd:web bound to %s", web.Listeners, want)
	}
	code, body, err := testenv.Get(want, "/")
	if err != nil || code != 200 || body != "version=1\n" {
		t.Errorf("GET / on the passed socket %s: %d %q %v", want, code, body, err)
	}

	ls := listeners(t, port)
	if len(ls) != 1 || ls[0].Inode != ino {
		t.Errorf("LISTEN sockets on port %d: %+v; want exactly the passed one (inode %d)", port, ls, ino)
	}
	if !socketInodes(t, a.cmd.Process.Pid)[ino] {
		t.Errorf("the supervisor (pid %d) does not hold the passed socket (inode %d)", a.cmd.Process.Pid, ino)
	}
	if !socketInodes(t, web.MasterPID)[ino] {
		t.Errorf("the gunicorn master (pid %d) does not hold the passed socket (inode %d)", web.MasterPID, ino)
	}
	if env := environ(t, a.cmd.Process.Pid); !slices.Contains(env, "LISTEN_FDS=1") || !slices.Contains(env, "LISTEN_PID="+strconv.Itoa(a.cmd.Process.Pid)) {
		t.Errorf("the supervisor was not started with LISTEN_FDS=1 LISTEN_PID=<its pid>: %q", env)
	}
	assertNoSystemdEnv(t, "gunicorn master", web.MasterPID)
	for _, w := range web.WorkerPIDs {
		assertNoSystemdEnv(t, "gunicorn worker", w)
	}
	t.Logf("socket activation: port %d inode %d, %d LISTEN entry; held by supervisor %d and master %d; GET / %d %q",
		port, ino, len(ls), a.cmd.Process.Pid, web.MasterPID, code, strings.TrimSpace(body))

	if err := a.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.wait(60 * time.Second); code != 0 {
		t.Errorf("supervisor exit status %d after TERM, want 0", code)
	}
	if ls := listeners(t, port); len(ls) != 0 {
		t.Errorf("port %d still listening after the supervisor exited: %+v", port, ls)
	}
}

// TestSocketActivationMissing: a systemd:NAME listener for a socket systemd
// did not pass makes the supervisor exit non-zero, naming it.
func TestSocketActivationMissing(t *testing.T) {
	tests := []struct {
		name   string
		listen string
		pass   bool
		want   []string
	}{
		{"other name", "systemd:other", true, []string{`"other"`, "0=web (fd 3)"}},
		{"nothing passed", "systemd:web", false, []string{`"web"`, "none"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var files []*os.File
			if tc.pass {
				f, _, _ := passedSocket(t)
				files = append(files, f)
				defer f.Close()
			}
			a := startActivated(t, tc.listen, files, "web")
			code := a.wait(60 * time.Second)
			out := a.out.String()
			t.Logf("%s: exit %d: %s", tc.listen, code, strings.TrimSpace(out))
			if code <= 0 {
				t.Errorf("supervisor exit status %d, want non-zero", code)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output does not name %s", w)
				}
			}
		})
	}
}
