package pid1

import (
	"bufio"
	"bytes"
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

// startPID1 starts the supervisor through unshare (opts.Wrap is replaced)
// and finds its host pid: the only child of the unshare process, whose
// innermost namespace pid is 1. Its cleanup, which runs before the harness's
// (which signals unshare, to no effect), TERMs the supervisor and waits for
// it; if it does not exit within 60 s it is KILLed, which ends the namespace.
func startPID1(t *testing.T, opts e2e.Options) *pid1Sup {
	t.Helper()
	opts.Wrap = unshareWrap
	s := e2e.Start(t, opts)
	p := &pid1Sup{Supervisor: s, t: t}
	testenv.WaitFor(t, 10*time.Second, "the supervisor as the child of unshare", func() bool {
		kids, err := childrenOf(s.Cmd.Process.Pid)
		if err != nil || len(kids) != 1 {
			return false
		}
		p.HostPID = kids[0]
		return true
	})
	nspids, err := nsPIDs(p.HostPID)
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
		st, err := readStat(pid)
		if err != nil {
			continue
		}
		nspids, err := nsPIDs(pid)
		if err != nil || len(nspids) == 0 {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline") // gone: empty, like a zombie's
		st.NSPID = nspids[len(nspids)-1]
		st.Cmdline = strings.TrimSpace(string(bytes.ReplaceAll(cmd, []byte{0}, []byte{' '})))
		out = append(out, st)
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

// readStat reads pid's state and parent from /proc/PID/stat (fields are
// counted after the last ')', as the command name may hold anything).
func readStat(pid int) (nsProc, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nsProc{}, fmt.Errorf("reading stat of pid %d: %w", pid, err)
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return nsProc{}, fmt.Errorf("parsing stat of pid %d: %q", pid, b)
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 2 {
		return nsProc{}, fmt.Errorf("parsing stat of pid %d: %q", pid, b)
	}
	ppid, err := strconv.Atoi(string(f[1]))
	if err != nil {
		return nsProc{}, fmt.Errorf("parsing ppid of pid %d: %w", pid, err)
	}
	return nsProc{HostPID: pid, PPID: ppid, State: f[0][0]}, nil
}

// nsPIDs returns the NSpid line of /proc/PID/status: pid's number in each
// namespace from the root one to its own.
func nsPIDs(pid int) ([]int, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, fmt.Errorf("reading status of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "NSpid:")
		if !ok {
			continue
		}
		var out []int
		for _, field := range strings.Fields(rest) {
			n, err := strconv.Atoi(field)
			if err != nil {
				return nil, fmt.Errorf("parsing NSpid of pid %d: %w", pid, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading status of pid %d: %w", pid, err)
	}
	return nil, fmt.Errorf("pid %d: no NSpid line in status", pid)
}

// childrenOf returns the children of pid, from /proc/PID/task/*/children.
func childrenOf(pid int) ([]int, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return nil, fmt.Errorf("listing tasks of pid %d: %w", pid, err)
	}
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the task ended
		}
		for _, field := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(field)
			if err != nil {
				return nil, fmt.Errorf("parsing %s: %w", f, err)
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// environ returns pid's environment as it was exec'd (/proc/PID/environ).
func environ(t testing.TB, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		t.Fatalf("reading environment of pid %d: %v", pid, err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
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

// tcpListen is one LISTEN entry of /proc/net/tcp.
type tcpListen struct {
	Port int
	// Queue is the accept queue's length (rx_queue of a listening socket).
	Queue int
	Inode uint64
}

// listeners returns the IPv4 LISTEN sockets on port.
func listeners(t testing.TB, port int) []tcpListen {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatalf("reading /proc/net/tcp: %v", err)
	}
	var out []tcpListen
	lines := strings.Split(string(b), "\n")
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if !ok {
			continue
		}
		p, err := strconv.ParseUint(hexPort, 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		q, err := strconv.ParseUint(rx, 16, 32)
		if err != nil {
			t.Fatalf("/proc/net/tcp: rx_queue %q: %v", f[4], err)
		}
		ino, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			t.Fatalf("/proc/net/tcp: inode %q: %v", f[9], err)
		}
		out = append(out, tcpListen{Port: port, Queue: int(q), Inode: ino})
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
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatalf("listing fds of pid %d: %v", pid, err)
	}
	out := map[uint64]bool{}
	for _, fd := range fds {
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		if s, ok := strings.CutPrefix(link, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out[ino] = true
			}
		}
	}
	return out
}

// waitOutput waits until the supervisor's output contains substr.
func waitOutput(t *testing.T, out func() string, substr string, timeout time.Duration) {
	t.Helper()
	testenv.WaitFor(t, timeout, fmt.Sprintf("%q in the supervisor's output", substr), func() bool {
		return strings.Contains(out(), substr)
	})
}

// testApp is a plain WSGI app (no Flask) for these tests. GET /?ms=N answers
// "version=1" after N ms; with mark=NAME it first creates the file NAME in
// its working directory, so that a test knows the request is in a worker's
// hands. BOOT_DELAY (seconds) delays every worker's import: a worker that
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
