package upgrade

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// baseConfig runs three apps: web (Gunicorn, 2 workers, TCP), api
// (Gunicorn, 1 worker, Unix socket) and worker (a process: this test binary
// in helper mode "block"). @TESTBIN@ is the test binary.
var baseConfig = e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{
	{Name: "web"},
	{Name: "api", Workers: 1, Listen: []string{"unix://@DIR@/api.sock"}},
	{Name: "worker", Command: []string{"@TESTBIN@"}, Directory: "@DIR@", Extra: `env = { UPGRADE_TEST_HELPER = "block" }` + "\n"},
}}.String()

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

// listenInode returns the fd link target ("socket:[N]") of the listener
// bound at addr: 127.0.0.1:PORT, or a Unix socket path.
func listenInode(addr string) (string, error) {
	if !strings.HasPrefix(addr, "/") {
		return socketTarget(testenv.FindSocket("/proc/net/tcp", addr, testenv.TCPListen))
	}
	// The supervisor binds at a hidden name beside the path (hard-linked to
	// it); /proc/net/unix shows the name bound.
	held := filepath.Join(filepath.Dir(addr), "."+filepath.Base(addr)+".held")
	names, err := testenv.UnixListeners()
	if err != nil {
		return "", err
	}
	for ino, name := range names {
		if name == addr || name == held {
			return socketTarget(ino, nil)
		}
	}
	return "", fmt.Errorf("/proc/net/unix: no listener at %s or %s", addr, held)
}

// udpInode returns the fd link target ("socket:[N]") of the UDP socket
// bound at addr (127.0.0.1:PORT).
func udpInode(addr string) (string, error) {
	return socketTarget(testenv.FindSocket("/proc/net/udp", addr, testenv.UDPUnconnected))
}

func socketTarget(ino uint64, err error) (string, error) {
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("socket:[%d]", ino), nil
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
