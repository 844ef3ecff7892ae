package pid1

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// unshareWrap runs the supervisor as PID 1 of a new PID namespace with its
// own /proc. `unshare --fork` blocks INT and TERM and forwards nothing: tests
// signal the supervisor's host pid (pid1Sup.HostPID) instead.
var unshareWrap = []string{"unshare", "--pid", "--fork", "--mount-proc"}

// pid1Sup is a supervisor running as PID 1 of its own PID namespace.
type pid1Sup struct {
	*e2e.Supervisor
	t testing.TB
	// HostPID is the supervisor's pid in the test's (the root) namespace.
	HostPID int
	// ns is the /proc/PID/ns/pid link of the namespace ("pid:[inode]").
	ns string
}

// startPID1 starts the supervisor through unshare (opts.Wrap, when nil, is
// unshareWrap; else a wrap whose first program becomes unshare, such as
// e2e.DockerLike's) and finds its host pid: the only child of the unshare process, whose
// innermost namespace pid is 1. Its cleanup, which runs before the harness's
// (which signals unshare, to no effect), TERMs the supervisor and waits for
// it; if it does not exit within 60 s it is KILLed, which ends the namespace.
func startPID1(t *testing.T, opts e2e.Options) *pid1Sup {
	t.Helper()
	if opts.Wrap == nil {
		opts.Wrap = unshareWrap
	}
	s := e2e.Start(t, opts)
	p := &pid1Sup{Supervisor: s, t: t}
	testenv.WaitFor(t, 10*time.Second, "the supervisor as the child of unshare", func() bool {
		kids, err := testenv.Children(s.Cmd.Process.Pid)
		if err != nil || len(kids) != 1 {
			return false
		}
		p.HostPID = kids[0]
		return true
	})
	nspids, err := testenv.NSpids(p.HostPID)
	if err != nil {
		t.Fatal(err)
	}
	if len(nspids) < 2 || nspids[len(nspids)-1] != 1 {
		t.Fatalf("supervisor pid %d: NSpid %v, want it to be 1 in its own namespace", p.HostPID, nspids)
	}
	p.ns, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", p.HostPID))
	if err != nil {
		t.Fatalf("reading the supervisor's pid namespace: %v", err)
	}
	t.Cleanup(func() {
		if s.Exited() {
			return
		}
		if err := syscall.Kill(p.HostPID, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("TERM supervisor pid %d: %v", p.HostPID, err)
		}
		if code := s.Wait(60 * time.Second); code == -1 {
			t.Errorf("supervisor (host pid %d) did not exit within 60 s of TERM; killing its namespace", p.HostPID)
			_ = syscall.Kill(p.HostPID, syscall.SIGKILL) // ESRCH: it exited meanwhile
			s.Wait(30 * time.Second)
		}
	})
	return p
}

// signal sends sig to the supervisor (not to unshare).
func (p *pid1Sup) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := syscall.Kill(p.HostPID, sig); err != nil {
		p.t.Fatalf("signal %v to supervisor pid %d: %v", sig, p.HostPID, err)
	}
}

// nsProc is one process of the supervisor's namespace, seen from the host.
type nsProc struct {
	HostPID int
	// NSPID is the pid inside the namespace (the supervisor is 1).
	NSPID int
	// PPID is the host pid of the parent (/proc of the root namespace).
	PPID  int
	State byte
	// Cmdline is argv joined by spaces ("" for a zombie).
	Cmdline string
}

// procs lists every process in the supervisor's PID namespace, itself
// included. Processes that vanish while being read are left out.
func (p *pid1Sup) procs() []nsProc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		p.t.Fatalf("reading /proc: %v", err)
	}
	var out []nsProc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ns, err := os.Readlink("/proc/" + e.Name() + "/ns/pid")
		if err != nil || ns != p.ns {
			continue
		}
		st, err := testenv.ReadStat(pid)
		if err != nil {
			continue
		}
		nspids, err := testenv.NSpids(pid)
		if err != nil || len(nspids) == 0 {
			continue
		}
		cmd, _ := testenv.Cmdline(pid) // gone: empty, like a zombie's
		out = append(out, nsProc{HostPID: pid, NSPID: nspids[len(nspids)-1], PPID: st.PPID, State: st.State, Cmdline: cmd})
	}
	return out
}

// hostPID maps a pid of the supervisor's namespace (as status reports it)
// to the host pid, failing the test when no such process is alive.
func (p *pid1Sup) hostPID(nspid int) int {
	p.t.Helper()
	for _, pr := range p.procs() {
		if pr.NSPID == nspid && pr.State != 'Z' {
			return pr.HostPID
		}
	}
	p.t.Fatalf("no live process with pid %d in the supervisor's namespace", nspid)
	return 0
}

// zombies counts the zombies of the supervisor's namespace.
func zombies(procs []nsProc) int {
	n := 0
	for _, pr := range procs {
		if pr.State == 'Z' {
			n++
		}
	}
	return n
}

// environ returns pid's environment as it was exec'd (/proc/PID/environ).
func environ(t testing.TB, pid int) []string {
	t.Helper()
	env, err := testenv.Environ(pid)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// systemdVars are the variables of systemd's protocols, which belong to the
// supervisor and must never reach an app the supervisor did not hand a socket.
var systemdVars = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"}

// assertNoSystemdEnv fails the test if pid's environment holds any of
// systemdVars. It also checks that the test mark is there, which proves the
// environment read is the one the supervisor built.
func assertNoSystemdEnv(t testing.TB, what string, pid int) {
	t.Helper()
	env := environ(t, pid)
	marked := false
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		if k == testenv.MarkKey {
			marked = true
		}
		for _, v := range systemdVars {
			if k == v {
				t.Errorf("%s (pid %d) inherited %s", what, pid, kv)
			}
		}
	}
	if !marked {
		t.Errorf("%s (pid %d): environment lacks %s; is it the right process? %q", what, pid, testenv.MarkKey, env)
	}
}

// listeners returns the IPv4 LISTEN sockets on port.
func listeners(t testing.TB, port int) []testenv.NetSocket {
	t.Helper()
	socks, err := testenv.NetSockets("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	var out []testenv.NetSocket
	for _, s := range socks {
		if s.Port == port && s.State == testenv.TCPListen {
			out = append(out, s)
		}
	}
	return out
}

// portOf returns the port of a "host:port" address.
func portOf(t testing.TB, addr string) int {
	t.Helper()
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.Atoi(addr[i+1:])
	if i < 0 || err != nil {
		t.Fatalf("no port in address %q", addr)
	}
	return p
}

// socketInodes returns the inodes of the sockets pid holds open.
func socketInodes(t testing.TB, pid int) map[uint64]bool {
	t.Helper()
	fds, err := testenv.FDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint64]bool{}
	for _, target := range fds {
		if kind, ino, ok := testenv.KindInode(target); ok && kind == "socket" {
			out[ino] = true
		}
	}
	return out
}

// testApp is a plain WSGI app (no Flask) for these tests. GET /?ms=N answers
// "version=1" after N ms; with mark=NAME it first creates the file NAME in
// its working directory, so that a test knows the request is in a worker's
// hands, and after the N ms writes the time (Unix seconds) into NAME.done
// just before it answers. BOOT_DELAY (seconds) delays every worker's import: a worker that
// answers has booted.
const testApp = `import os
import time
from urllib.parse import parse_qs

time.sleep(float(os.environ.get("BOOT_DELAY", "0")))


def app(environ, start_response):
    q = parse_qs(environ.get("QUERY_STRING", ""))
    mark = q.get("mark", [""])[0]
    if mark:
        open(os.path.join(os.getcwd(), os.path.basename(mark)), "w").close()
    time.sleep(int(q.get("ms", ["0"])[0]) / 1000.0)
    if mark:
        with open(os.path.join(os.getcwd(), os.path.basename(mark) + ".done"), "w") as f:
            f.write(repr(time.time()))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"version=1\n"]
`

// writeTestApp writes testApp as app.py into dir, creating dir.
func writeTestApp(t testing.TB, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.py"), []byte(testApp), 0o644); err != nil {
		t.Fatal(err)
	}
}
