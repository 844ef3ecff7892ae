package proc

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
)

// testWaitExit returns the exit ch yields, failing the test after timeout.
func testWaitExit(t *testing.T, ch <-chan ExitInfo, timeout time.Duration, what string) ExitInfo {
	t.Helper()
	tm := time.NewTimer(timeout)
	defer tm.Stop()
	select {
	case info, ok := <-ch:
		if !ok {
			t.Fatalf("%s: exit channel closed without a value", what)
		}
		return info
	case <-tm.C:
		t.Fatalf("%s: no exit within %s", what, timeout)
	}
	return ExitInfo{}
}

// testPoll calls cond every 10 ms until it is true or timeout passes.
func testPoll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return cond()
		}
		<-tick.C
	}
	return true
}

// testDevNull opens /dev/null for writing (a child's stdout when its output
// does not matter).
func testDevNull(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// testZombies returns the PIDs of zombie children of pid.
func testZombies(t *testing.T, pid int) []int {
	t.Helper()
	tree, err := Scan("")
	if err != nil {
		t.Fatal(err)
	}
	var out []int
	for _, c := range tree.Children(pid) {
		if st, ok := tree.Stat(c); ok && st.State == "Z" {
			out = append(out, c)
		}
	}
	return out
}

// TestReaperRoutesExitsByPID starts many children at once, each exiting
// with its own code, and checks every exit reaches the channel of its PID.
func TestReaperRoutesExitsByPID(t *testing.T) {
	r := NewReaper()
	defer r.Close()
	self, null := testBinary(t), testDevNull(t)
	const n = 24
	type started struct {
		pid  int
		code int
		ch   <-chan ExitInfo
	}
	var kids []started
	for i := 0; i < n; i++ {
		code := 10 + i
		pid, ch, err := r.ForkExec(Spec{Argv: []string{self}, Env: testHelperEnv("exit", testHelperCode+"="+strconv.Itoa(code)), Dir: t.TempDir()}, null, null)
		if err != nil {
			t.Fatal(err)
		}
		kids = append(kids, started{pid, code, ch})
	}
	for _, k := range kids {
		info := testWaitExit(t, k.ch, 60*time.Second, fmt.Sprintf("child %d", k.pid))
		if info.Code != k.code || info.Signal != 0 {
			t.Errorf("pid %d: got %+v, want exit %d", k.pid, info, k.code)
		}
		if _, ok := <-k.ch; ok {
			t.Errorf("pid %d: channel yielded twice", k.pid)
		}
		if r.Managed(k.pid) {
			t.Errorf("pid %d still registered after its exit", k.pid)
		}
	}
	if got := r.Orphans(); got != 0 {
		t.Errorf("orphans = %d, want 0 (every child was registered)", got)
	}
	if z := testZombies(t, os.Getpid()); len(z) != 0 {
		t.Errorf("zombies left: %v", z)
	}
	t.Logf("%d children, each exit routed to its PID; orphans=0", n)
}

// TestReaperSignalExitAndProcessGroup checks a child started by forkExec
// leads its own process group and that a death by signal is reported as such.
func TestReaperSignalExitAndProcessGroup(t *testing.T) {
	r := NewReaper()
	defer r.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	rd := os.NewFile(uintptr(p[0]), "child output")
	defer rd.Close()
	pid, ch, err := r.ForkExec(Spec{Argv: []string{testBinary(t)}, Env: testHelperEnv("block"), Dir: t.TempDir()}, p[1], p[1])
	if cerr := unix.Close(p[1]); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(rd).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("child output %q, %v", line, err)
	}
	pi, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pi.PGRP != pid || pi.PGRP == syscall.Getpgrp() {
		t.Errorf("child pgid %d, want its own pid %d (test's pgid %d)", pi.PGRP, pid, syscall.Getpgrp())
	}
	if !r.Managed(pid) {
		t.Errorf("pid %d not registered", pid)
	}
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	info := testWaitExit(t, ch, 30*time.Second, "killed child")
	if info.Signal != int(syscall.SIGKILL) || info.Code != -1 || info.ShellCode() != 137 {
		t.Errorf("got %+v (%s), want signal 9, code -1, shell code 137", info, info)
	}
	t.Logf("child pid=%d pgid=%d exit=%s", pid, pi.PGRP, info)
}

// TestReaperCountsOrphans: a child nobody registered (forked behind the
// reaper's back) is reaped and counted; Adopt of its PID afterwards still
// learns its exit.
func TestReaperCountsOrphans(t *testing.T) {
	r := NewReaper()
	defer r.Close()
	self := testBinary(t)
	pid, err := syscall.ForkExec(self, []string{self}, &syscall.ProcAttr{
		Env:   testHelperEnv("exit", testHelperCode+"=5"),
		Files: []uintptr{uintptr(testDevNull(t)), uintptr(testDevNull(t)), uintptr(testDevNull(t))},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !testPoll(30*time.Second, func() bool { return r.Orphans() == 1 }) {
		t.Fatalf("orphans = %d after 30 s, want 1", r.Orphans())
	}
	if r.Managed(pid) {
		t.Errorf("orphan %d reported as managed", pid)
	}
	info := testWaitExit(t, r.Adopt(pid), time.Second, "adopt of a reaped orphan")
	if info.Code != 5 {
		t.Errorf("adopted exit %+v, want code 5", info)
	}
	if z := testZombies(t, os.Getpid()); len(z) != 0 {
		t.Errorf("zombies left: %v", z)
	}
	t.Logf("orphan pid=%d reaped and counted (orphans=%d), remembered exit %s", pid, r.Orphans(), info)
}

// TestReaperAdoptLiveProcess: Adopt of a live child routes its later exit.
func TestReaperAdoptLiveProcess(t *testing.T) {
	r := NewReaper()
	defer r.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	rd := os.NewFile(uintptr(p[0]), "child output")
	defer rd.Close()
	self := testBinary(t)
	null := testDevNull(t)
	pid, err := syscall.ForkExec(self, []string{self}, &syscall.ProcAttr{
		Env:   testHelperEnv("block"),
		Files: []uintptr{uintptr(null), uintptr(p[1]), uintptr(null)},
	})
	if cerr := unix.Close(p[1]); cerr != nil {
		t.Fatal(cerr)
	}
	if err != nil {
		t.Fatal(err)
	}
	ch := r.Adopt(pid)
	if line, err := bufio.NewReader(rd).ReadString('\n'); err != nil || line != "ready\n" {
		_ = unix.Kill(pid, unix.SIGKILL) // ESRCH: already gone
		t.Fatalf("child output %q, %v", line, err)
	}
	if !r.Managed(pid) {
		t.Errorf("adopted pid %d not managed", pid)
	}
	if err := unix.Kill(pid, unix.SIGTERM); err != nil {
		t.Fatal(err)
	}
	info := testWaitExit(t, ch, 30*time.Second, "adopted child")
	if info.Code != 0 || info.Signal != 0 {
		t.Errorf("adopted exit %+v, want exit 0 (it handles TERM)", info)
	}
	if r.Orphans() != 0 {
		t.Errorf("orphans = %d, want 0", r.Orphans())
	}
}

// TestReaperSubreaperDoubleFork: with PR_SET_CHILD_SUBREAPER, a grandchild
// whose parent exited re-parents to us; its exit is reaped as an orphan and
// no zombie is left.
func TestReaperSubreaperDoubleFork(t *testing.T) {
	if err := SetChildSubreaper(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0); err != nil {
			t.Errorf("unset subreaper: %v", err)
		}
	})
	r := NewReaper()
	defer r.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// Output returns once the orphaner exited and the pipe reached EOF, i.e.
	// once the grandchild (which shares the pipe) exited too.
	out, info, err := r.Output(ctx, []string{testBinary(t)}, testHelperEnv("orphaner"), t.TempDir())
	if err != nil || info.Code != 0 {
		t.Fatalf("orphaner: %v, %s, output %q", err, info, out)
	}
	gpid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("orphaner output %q: %v", out, err)
	}
	if !testPoll(30*time.Second, func() bool { return r.Orphans() == 1 }) {
		t.Fatalf("orphans = %d after 30 s, want 1 (the grandchild %d)", r.Orphans(), gpid)
	}
	ginfo := testWaitExit(t, r.Adopt(gpid), time.Second, "grandchild")
	if ginfo.Code != 3 {
		t.Errorf("grandchild exit %+v, want code 3", ginfo)
	}
	if z := testZombies(t, os.Getpid()); len(z) != 0 {
		t.Errorf("zombies left: %v", z)
	}
	t.Logf("double fork: grandchild %d re-parented and reaped (%s), orphans=%d, zombies=0", gpid, ginfo, r.Orphans())
}

// TestForkExecDescriptors: the child gets /dev/null, its stdout and stderr
// pipes and exactly the listed sockets, none of the supervisor's other
// descriptors. The
// child is /bin/sleep, which opens nothing of its own once it sleeps, so its
// descriptors are what it inherited (a Go helper would show the runtime's
// own cgroup and race-detector files).
func TestForkExecDescriptors(t *testing.T) {
	r := NewReaper()
	defer r.Close()
	tcp := config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0"}
	passed, err := listen.Bind(tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer passed.Close()
	other, err := listen.Bind(tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	path := filepath.Join(t.TempDir(), "u.sock")
	unixSock, err := listen.Bind(config.Listener{Raw: "unix://" + path, Network: config.NetUnix, Address: path})
	if err != nil {
		t.Fatal(err)
	}
	defer unixSock.Close()
	var p, e [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	if err := unix.Pipe2(e[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(e[0])
	pid, ch, err := r.ForkExec(Spec{Argv: []string{"/bin/sleep", "3600"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: t.TempDir(), Files: []int{passed.FD(), unixSock.FD()}}, p[1], e[1])
	for _, w := range []int{p[1], e[1]} {
		if cerr := unix.Close(w); cerr != nil {
			t.Fatal(cerr)
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = unix.Kill(pid, unix.SIGKILL) // ESRCH: already gone
		testWaitExit(t, ch, 30*time.Second, "sleep child")
	}()
	// ForkExec returns after the exec; 'S' means sleep reached nanosleep.
	if !testPoll(30*time.Second, func() bool { pi, err := ReadStat(pid); return err == nil && pi.State == "S" }) {
		t.Fatal("child never went to sleep")
	}
	pi, err := ReadStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if pi.PGRP != pid {
		t.Errorf("child pgid %d, want its own pid %d", pi.PGRP, pid)
	}
	got, err := testListFDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	ino := func(fd int) uint64 {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino
	}
	want := []string{
		"0 /dev/null",
		fmt.Sprintf("1 pipe:[%d]", ino(p[0])),
		fmt.Sprintf("2 pipe:[%d]", ino(e[0])),
		fmt.Sprintf("3 socket:[%d]", ino(passed.FD())),
		fmt.Sprintf("4 socket:[%d]", ino(unixSock.FD())),
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("child descriptors:\n%s\nwant exactly:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	t.Logf("child pid=%d pgid=%d fds: %s", pid, pi.PGRP, strings.Join(got, ", "))
}
