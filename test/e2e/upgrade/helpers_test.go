package upgrade

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

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
	*e2e.Supervisor
	t *testing.T
	// v1 and v2 are the supervisor built with Version "v1" and "v2".
	v1, v2 string
}

// startSup installs v1 at Dir/bin/supervisor, writes the configuration
// (placeholders of e2e.Options.Config) and starts the supervisor with env
// added to its environment.
func startSup(t *testing.T, cfgText string, env ...string) *sup {
	t.Helper()
	return startSupWith(t, cfgText, nil, env...)
}

// startSupWith is startSup with setup run on the test directory (after
// Dir/app holds release 1, before the supervisor starts).
func startSupWith(t *testing.T, cfgText string, setup func(dir string), env ...string) *sup {
	t.Helper()
	s := &sup{t: t, v1: e2e.SupervisorVersion(t, "v1"), v2: e2e.SupervisorVersion(t, "v2")}
	s.Supervisor = e2e.Start(t, e2e.Options{Config: cfgText, Env: env, Bin: "@DIR@/bin/supervisor", Setup: func(dir string) {
		for _, d := range []string{"bin", "app"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		testenv.WriteRelease(t, filepath.Join(dir, "app"), testenv.Release{Version: "1"})
		if setup != nil {
			setup(dir)
		}
		install(t, filepath.Join(dir, "bin", "supervisor"), readFile(t, s.v1))
	}})
	return s
}

// install puts content (mode 0755) at path the way a package manager does:
// write path.new, then rename it over the path.
func install(t *testing.T, path string, content []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, content, 0o755); err != nil {
		t.Fatalf("write %s: %v", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatalf("install %s: %v", path, err)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// install installs content over the supervisor's binary.
func (s *sup) install(content []byte) {
	s.t.Helper()
	install(s.t, s.Bin, content)
}

// installFile installs a copy of the file at src over the supervisor's binary.
func (s *sup) installFile(src string) {
	s.t.Helper()
	s.install(readFile(s.t, src))
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
