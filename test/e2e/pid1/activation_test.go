package pid1

import (
	"net"
	"os"
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

// activationConfig is one Gunicorn app on a socket passed by systemd, at
// the listen address under test.
func activationConfig(listen string) string {
	return e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{{Listen: []string{listen}}}}.String()
}

// activationShim execs the supervisor with LISTEN_PID set to its own pid,
// as systemd does after fork, so that Cmd.Process.Pid is the supervisor's.
var activationShim = []string{"/bin/sh", "-c", `LISTEN_PID=$$ exec "$0" "$@"`}

// startActivated starts the supervisor the way systemd starts a
// socket-activated service, on activationConfig with listen address listen:
// files as fds 3.., LISTEN_FDS, LISTEN_FDNAMES=names (no LISTEN_* at all
// when files is empty) and LISTEN_PID equal to its own pid. It does not wait
// for the control socket: some tests expect the supervisor to refuse.
func startActivated(t *testing.T, listen string, files []*os.File, names string) *e2e.Supervisor {
	t.Helper()
	var env []string
	if len(files) > 0 {
		env = []string{"LISTEN_FDS=" + strconv.Itoa(len(files)), "LISTEN_FDNAMES=" + names}
	}
	return e2e.Start(t, e2e.Options{
		Config:     activationConfig(listen),
		Env:        env,
		ExtraFiles: files,
		Wrap:       activationShim,
		NoWait:     true,
		Setup:      func(dir string) { writeRelease(t, filepath.Join(dir, "app"), testenv.OK) },
	})
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
// port: nothing else bound it) with shared steering, the supervisor took it because LISTEN_PID is
// its own pid, and no LISTEN_* variable reaches Gunicorn.
func TestSocketActivation(t *testing.T) {
	f, port, ino := passedSocket(t)
	a := startActivated(t, "systemd:web", []*os.File{f}, "web")
	if err := f.Close(); err != nil { // the supervisor holds its own copy now
		t.Fatal(err)
	}
	var web control.AppStatus
	testenv.WaitFor(t, 90*time.Second, "app web running", func() bool {
		if a.Exited() {
			t.Fatalf("supervisor exited (status %d):\n%s", a.ExitStatus(), a.Output())
		}
		if _, err := os.Stat(a.Socket); err != nil {
			return false
		}
		web = a.Status().Apps[0]
		return web.State == control.StateRunning
	})
	st := a.Status()
	if st.Supervisor.PID != a.PID() {
		t.Errorf("supervisor pid %d, want the exec'd pid %d", st.Supervisor.PID, a.PID())
	}
	want := "127.0.0.1:" + strconv.Itoa(port)
	if len(web.Listeners) != 1 || web.Listeners[0].Bound != want || web.Listeners[0].Address != "systemd:web" {
		t.Errorf("listeners %+v, want one systemd:web bound to %s", web.Listeners, want)
	}
	// systemd owns the passed socket: its generations share it.
	if len(web.Listeners) == 1 && web.Listeners[0].Steering != "shared" {
		t.Errorf("systemd:web steering %q, want shared", web.Listeners[0].Steering)
	}
	code, body, err := testenv.Get(want, "/")
	if err != nil || code != 200 || body != "version=1\n" {
		t.Errorf("GET / on the passed socket %s: %d %q %v", want, code, body, err)
	}

	ls := listeners(t, port)
	if len(ls) != 1 || ls[0].Inode != ino {
		t.Errorf("LISTEN sockets on port %d: %+v; want exactly the passed one (inode %d)", port, ls, ino)
	}
	if !socketInodes(t, a.PID())[ino] {
		t.Errorf("the supervisor (pid %d) does not hold the passed socket (inode %d)", a.PID(), ino)
	}
	if !socketInodes(t, web.MasterPID)[ino] {
		t.Errorf("the gunicorn master (pid %d) does not hold the passed socket (inode %d)", web.MasterPID, ino)
	}
	if env := environ(t, a.PID()); !slices.Contains(env, "LISTEN_FDS=1") || !slices.Contains(env, "LISTEN_PID="+strconv.Itoa(a.PID())) {
		t.Errorf("the supervisor was not started with LISTEN_FDS=1 LISTEN_PID=<its pid>: %q", env)
	}
	assertNoSystemdEnv(t, "gunicorn master", web.MasterPID)
	for _, w := range web.WorkerPIDs {
		assertNoSystemdEnv(t, "gunicorn worker", w)
	}
	t.Logf("socket activation: port %d inode %d, %d LISTEN entry; held by supervisor %d and master %d; GET / %d %q",
		port, ino, len(ls), a.PID(), web.MasterPID, code, strings.TrimSpace(body))

	if err := a.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if code := a.Wait(60 * time.Second); code != 0 {
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
			code := a.Wait(60 * time.Second)
			out := a.Output()
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
