package core

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// userConfig runs a Gunicorn app and a process as nobody. The process tries
// to read a root-only file, then sleeps.
var userConfig = e2e.Config{}.String() + `
[app.web]
user = "nobody"
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 2
listen = ["unix://@DIR@/web.sock"]
socket_group = "www-data"
socket_mode = "0660"
umask = "0027"
rlimits = { nofile = 4096, core = 0 }
env = { APP_NAME = "{app}", APP_RELEASE = "{release}" }
stop_timeout = "10s"

[app.reader]
user = "nobody"
kind = "process"
directory = "/"
command = ["/bin/sh", "-c", "cat @DIR@/secret; echo reader-cat-exit=$?; exec /bin/sleep 3600"]
`

// secretVar is set only in the supervisor's environment.
const secretVar = "GUNISUP_TEST_SECRET"

// TestAppRunsAsUser: with user = "nobody" the Gunicorn master and workers
// run with nobody's uid, gid and groups only (plus the umask and rlimits
// asked for), write their pidfile into the app's own run directory, cannot
// read a root-only file, and inherit no variable the supervisor has that is
// not on the allow-list; the held Unix socket (group www-data, 0660) serves
// a client running as www-data.
func TestAppRunsAsUser(t *testing.T) {
	requireRoot(t)
	nobodyGroups := groupsOf(t, "nobody")
	s := e2e.Start(t, e2e.Options{
		Config: userConfig,
		Env:    []string{secretVar + "=hunter2", "SUPCTL_SOCKET=/nonexistent.sock", "WATCHDOG_USEC=1000000"},
		Setup: func(dir string) {
			// nobody must reach the release, the socket and the venv.
			mustChmod(t, dir, 0o755)
			mustChmod(t, filepath.Dir(testenv.Venv(t)), 0o755)
			if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
				t.Fatal(err)
			}
			testenv.WriteRelease(t, filepath.Join(dir, "app"), testenv.Release{Version: "1"})
			if err := os.WriteFile(filepath.Join(dir, "secret"), []byte("TOPSECRET\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		},
	})
	web := s.WaitState("web", control.StateRunning, 60*time.Second)
	reader := s.WaitState("reader", control.StateRunning, 30*time.Second)

	var workers []int
	testenv.WaitFor(t, 30*time.Second, "2 workers", func() bool {
		workers = childPIDs(web.MasterPID)
		return len(workers) == 2
	})
	procs := map[string]int{"web master": web.MasterPID, "reader": reader.MasterPID}
	for i, w := range workers {
		procs["web worker "+strconv.Itoa(i+1)] = w
	}
	for what, pid := range procs {
		st := procStatus(t, pid)
		t.Logf("%s pid %d: Uid %s | Gid %s | Groups %s | Umask %s", what, pid, st["Uid"], st["Gid"], st["Groups"], st["Umask"])
		if st["Uid"] != "65534\t65534\t65534\t65534" || st["Gid"] != "65534\t65534\t65534\t65534" {
			t.Errorf("%s: Uid %q Gid %q, want nobody's 65534 throughout", what, st["Uid"], st["Gid"])
		}
		if st["Groups"] != nobodyGroups {
			t.Errorf("%s: Groups %q, want nobody's %q", what, st["Groups"], nobodyGroups)
		}
		checkEnviron(t, what, pid)
	}
	for _, pid := range append([]int{web.MasterPID}, workers...) {
		if st := procStatus(t, pid); st["Umask"] != "0027" {
			t.Errorf("pid %d: Umask %q, want 0027", pid, st["Umask"])
		}
		if lim := limitLine(t, pid, "Max open files"); !strings.Contains(lim, "4096                 4096") {
			t.Errorf("pid %d: %q, want nofile 4096 4096", pid, lim)
		}
	}

	// The root-only file: cat as nobody fails.
	testenv.WaitFor(t, 20*time.Second, "reader's cat to finish", func() bool {
		return strings.Contains(s.Output(), "reader-cat-exit=")
	})
	if out := s.Output(); strings.Contains(out, "TOPSECRET") || !strings.Contains(out, "reader-cat-exit=1") || !strings.Contains(out, "Permission denied") {
		t.Errorf("reader as nobody could read the root-only file, or failed otherwise:\n%s", out)
	}

	// The pidfile is in the app's own directory, written by nobody.
	pidfile := filepath.Join(s.Dir, "run", "apps", "web", fmt.Sprintf("web.s%d.g1.pid", s.PID()))
	fi, err := os.Stat(pidfile)
	if err != nil {
		t.Fatalf("pidfile: %v", err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody {
		t.Errorf("pidfile %s owned by uid %d, want %d", pidfile, st.Uid, nobody)
	}

	// Both reload strategies keep the user: usr2 writes pidfile.2 and
	// renames it in the app's directory, as nobody.
	master := web.MasterPID
	for _, strategy := range []string{"usr2", "swap"} {
		if out, code := s.SupctlRun("reload", "web", "--strategy", strategy); code != 0 {
			t.Fatalf("supctl reload web --strategy %s: exit %d: %s", strategy, code, out)
		}
		now := s.WaitState("web", control.StateRunning, 60*time.Second)
		st := procStatus(t, now.MasterPID)
		t.Logf("after %s reload: master %d -> %d, Uid %s", strategy, master, now.MasterPID, st["Uid"])
		if now.MasterPID == master || st["Uid"] != "65534\t65534\t65534\t65534" {
			t.Errorf("after %s reload: master %d (was %d) Uid %q, want a new master as nobody", strategy, now.MasterPID, master, st["Uid"])
		}
		master = now.MasterPID
	}

	// The held socket: group www-data, 0660, served to a www-data client.
	sock := filepath.Join(s.Dir, "web.sock")
	fi, err = os.Lstat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Gid != 33 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket %s: gid %d mode %v, want www-data (33) 0660", sock, st.Gid, fi.Mode().Perm())
	}
	body := getAs(t, "www-data", sock)
	t.Logf("GET / over %s as www-data: %q", sock, body)
	if !strings.Contains(body, "200 OK") || !strings.Contains(body, "version=1") {
		t.Errorf("www-data client got %q, want 200 and version=1", body)
	}
}

// checkEnviron fails the test when pid's environment holds secretVar or a
// variable the supervisor never passes, or lacks the app user's account
// variables or the test mark (which pass_env lets through).
func checkEnviron(t *testing.T, what string, pid int) {
	t.Helper()
	raw, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatal(err)
	}
	env := strings.Split(strings.TrimRight(string(raw), "\x00"), "\x00")
	has := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		has[k] = true
		if k == secretVar || k == "SUPCTL_SOCKET" || k == "WATCHDOG_USEC" {
			t.Errorf("%s (pid %d) inherited %s", what, pid, kv)
		}
	}
	for _, want := range []string{"USER=nobody", "LOGNAME=nobody", "HOME=/nonexistent"} {
		if !strings.Contains("\x00"+string(raw), "\x00"+want+"\x00") {
			t.Errorf("%s (pid %d): environment lacks %s: %q", what, pid, want, env)
		}
	}
	if !has[testenv.MarkKey] {
		t.Errorf("%s (pid %d): environment lacks the test mark: %q", what, pid, env)
	}
	t.Logf("%s (pid %d) environment: %d variables: %s", what, pid, len(env), strings.Join(keys(env), " "))
}

func keys(env []string) []string {
	out := make([]string, len(env))
	for i, kv := range env {
		out[i], _, _ = strings.Cut(kv, "=")
	}
	return out
}

// TestCheckRefusesRootAndOpenEnvFile: `supervisor check` exits 2 naming the
// app that would run as root without allow_root, and naming an env_file
// that others may write.
func TestCheckRefusesRootAndOpenEnvFile(t *testing.T) {
	requireRoot(t)
	sup, _ := e2e.Binaries(t)
	dir := testenv.ShortTempDir(t)
	envFile := filepath.Join(dir, "open.env")
	if err := os.WriteFile(envFile, []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	mustChmod(t, envFile, 0o666)
	for _, c := range []struct{ name, text, want string }{
		{"root", "[app.idle]\nkind = \"process\"\ncommand = [\"/bin/sleep\", \"1\"]\n", `app.idle: app "idle" would run as root`},
		{"env_file", "[app.idle]\nuser = \"nobody\"\nkind = \"process\"\ncommand = [\"/bin/sleep\", \"1\"]\nenv_file = \"" + envFile + "\"\n", envFile + ": env file is writable by its group or others (mode 0666)"},
	} {
		cfg := filepath.Join(dir, c.name+".toml")
		if err := os.WriteFile(cfg, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := exec.Command(sup, "check", "-c", cfg).CombinedOutput()
		var ee *exec.ExitError
		code := 0
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		t.Logf("%s: supervisor check: exit %d: %s", c.name, code, bytes.TrimSpace(out))
		if code != 2 || !strings.Contains(string(out), c.want) {
			t.Errorf("%s: exit %d, output %q; want 2 and %q", c.name, code, out, c.want)
		}
	}
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs apps as other users")
	}
}

func mustChmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// groupsOf returns `id -G user` in /proc/PID/status's Groups format.
func groupsOf(t *testing.T, user string) string {
	t.Helper()
	out, err := exec.Command("id", "-G", user).Output()
	if err != nil {
		t.Fatalf("id -G %s: %v", user, err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

// procStatus returns /proc/PID/status as key -> value (trimmed).
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

// limitLine returns the line of /proc/PID/limits that starts with name.
func limitLine(t *testing.T, pid int, name string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, name) {
			return line
		}
	}
	return ""
}

// childPIDs returns the children of pid (every thread's).
func childPIDs(pid int) []int {
	tasks, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/task")
	if err != nil {
		return nil
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/task/" + task.Name() + "/children")
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// getAs sends GET / over the Unix socket sock from a Python client running
// as user (with its groups, through setpriv) and returns the raw answer.
func getAs(t *testing.T, user, sock string) string {
	t.Helper()
	const client = `import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
out = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    out += b
sys.stdout.write(out.decode())
`
	cmd := exec.Command("setpriv", "--reuid="+user, "--regid="+user, "--init-groups", testenv.SystemPython, "-c", client, sock)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("client as %s: %v: %s", user, err, out)
	}
	return string(out)
}
