package proc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestCgroup2Mount: the cgroup2 line of a mountinfo file (hybrid layout:
// cgroup v1 hierarchies first) names the mount point.
func TestCgroup2Mount(t *testing.T) {
	p := filepath.Join(t.TempDir(), "mountinfo")
	text := "25 30 0:23 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n" +
		"26 25 0:24 / /sys/fs/cgroup/memory rw,nosuid shared:9 - cgroup cgroup rw,memory\n" +
		"27 25 0:25 / /sys/fs/cgroup/unified rw,nosuid shared:10 - cgroup2 cgroup2 rw\n"
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := cgroup2Mount(p); err != nil || got != "/sys/fs/cgroup/unified" {
		t.Errorf("cgroup2Mount = %q, %v; want /sys/fs/cgroup/unified", got, err)
	}
	if err := os.WriteFile(p, []byte(text[:strings.Index(text, "27 ")]), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := cgroup2Mount(p); err == nil {
		t.Errorf("cgroup2Mount without cgroup2 = %q, want an error", got)
	}
}

// TestCgroupDir: a cgroup's directory is its path; no cgroup (nil) has none.
func TestCgroupDir(t *testing.T) {
	for _, tc := range []struct {
		g    *Cgroup
		want string
	}{{nil, ""}, {&Cgroup{Path: "/sys/fs/cgroup/sup/web"}, "/sys/fs/cgroup/sup/web"}} {
		if got := tc.g.Dir(); got != tc.want {
			t.Errorf("(%v).Dir() = %q, want %q", tc.g, got, tc.want)
		}
	}
}

// TestCgroupHoldsDetachedDaemon: a process started into an app's cgroup
// stays counted there after its daemon child called setsid and its parent
// exited; Kill ends it; Close removes the cgroups.
func TestCgroupHoldsDetachedDaemon(t *testing.T) {
	cg, err := OpenCgroups("gunisup-test")
	if err != nil {
		t.Skipf("no writable cgroup v2 here: %v", err)
	}
	t.Cleanup(func() { _ = cg.Close(5 * time.Second) }) // the test checks Close below; this is for early failures
	g, err := cg.App("app")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReaper()
	defer r.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	spec := Spec{Argv: []string{"/bin/sh", "-c", "setsid /bin/sleep 1000 </dev/null >/dev/null 2>&1 & echo $!"}, Dir: "/", Cgroup: g.FD()}
	pid, exitCh, err := r.ForkExec(spec, p[1], p[1])
	unix.Close(p[1])
	if err != nil {
		t.Fatal(err)
	}
	<-exitCh
	buf := make([]byte, 32)
	n, _ := unix.Read(p[0], buf)
	daemon := strings.TrimSpace(string(buf[:n]))
	var procs []int
	deadline := time.Now().Add(5 * time.Second)
	for procs = g.Procs(); len(procs) != 1 && time.Now().Before(deadline); procs = g.Procs() {
		time.Sleep(10 * time.Millisecond) // poll interval: the shell's exit leaves the cgroup once reaped
	}
	if len(procs) != 1 || slices.Contains(procs, pid) {
		t.Fatalf("cgroup %s holds %v, want only the daemon %s (the shell %d exited)", g.Path, procs, daemon, pid)
	}
	if err := g.Kill(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if left := g.Procs(); len(left) != 0 {
		t.Errorf("after Kill the cgroup holds %v", left)
	}
	if err := cg.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cg.Root); !os.IsNotExist(err) {
		t.Errorf("after Close %s: %v, want it removed", cg.Root, err)
	}
}

// TestTakeSockets: a listening socket of a process (this one, through its
// own pidfd) is copied once, however many descriptors name it; sockets the
// filter rejects are not kept open.
func TestTakeSockets(t *testing.T) {
	ln := tcpListener(t)
	dup, err := unix.Dup(ln)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	tcpListener(t) // another listener: offered, rejected, its copy closed
	want, _ := unix.Getsockname(ln)
	before := countFDs(t)
	offered := 0
	fds, err := TakeSockets(os.Getpid(), func(fd int) bool {
		sa, err := unix.Getsockname(fd)
		if err != nil {
			return false
		}
		if sa.(*unix.SockaddrInet4).Port == want.(*unix.SockaddrInet4).Port {
			offered++
			return true
		}
		return false
	})
	if err != nil {
		t.Skipf("pidfd_getfd unavailable: %v", err)
	}
	defer func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	}()
	if len(fds) != 1 || offered != 1 {
		t.Fatalf("took %v (offered %d times), want one copy of fd %d", fds, offered, ln)
	}
	var a, b unix.Stat_t
	if err := unix.Fstat(ln, &a); err != nil {
		t.Fatal(err)
	}
	if err := unix.Fstat(fds[0], &b); err != nil {
		t.Fatal(err)
	}
	if a.Ino != b.Ino || fds[0] == ln || fds[0] == dup {
		t.Errorf("copy fd %d inode %d; original fd %d inode %d: want a new descriptor of the same socket", fds[0], b.Ino, ln, a.Ino)
	}
	if flags, err := unix.FcntlInt(uintptr(fds[0]), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("copy is not close-on-exec: flags %d, %v", flags, err)
	}
	if got := countFDs(t); got != before+1 {
		t.Errorf("descriptors %d -> %d, want one more (rejected copies closed)", before, got)
	}
}

func tcpListener(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	return fd
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestCgroupLeafNeverKilled: a child cloned into a cgroup that cgroup.kill
// was written to is SIGKILLed on some kernels (this one is reported, not
// required); a Leaf of the same name made after the kill is fresh and runs
// its child, which CgroupOf finds there; the app's cgroup counts its
// leaves' processes, and Clear empties and removes the leaves but keeps
// the app's cgroup.
func TestCgroupLeafNeverKilled(t *testing.T) {
	cg, err := OpenCgroups("gunisup-test")
	if err != nil {
		t.Skipf("no writable cgroup v2 here: %v", err)
	}
	t.Cleanup(func() { _ = cg.Close(5 * time.Second) })
	app, err := cg.App("app")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReaper()
	defer r.Close()
	run := func(g *Cgroup, argv ...string) (int, <-chan ExitInfo) {
		t.Helper()
		pid, ch, err := r.ForkExec(Spec{Argv: argv, Dir: "/", Cgroup: g.FD()}, -1, -1)
		if err != nil {
			t.Fatal(err)
		}
		return pid, ch
	}
	leaf, err := app.Leaf("g1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ch := run(leaf, "/bin/true"); (<-ch).Code != 0 {
		t.Fatal("a child in a fresh leaf did not exit 0")
	}
	_, sleeper := run(leaf, "/bin/sleep", "1000")
	if err := leaf.Kill(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-sleeper
	if _, ch := run(leaf, "/bin/true"); (<-ch).Signal == int(unix.SIGKILL) {
		t.Logf("this kernel SIGKILLs a child cloned into a killed cgroup")
	}
	leaf.Close()
	again, err := app.Leaf("g1")
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if _, ch := run(again, "/bin/true"); (<-ch).Code != 0 {
		t.Fatal("a child in a leaf re-made after a kill did not exit 0")
	}
	pid, ch := run(again, "/bin/sleep", "1000")
	if procs := app.Procs(); !slices.Contains(procs, pid) {
		t.Errorf("app cgroup lists %v, want its leaf's %d", procs, pid)
	}
	if dir, err := CgroupOf(pid); err != nil || dir != again.Path {
		t.Errorf("CgroupOf(%d) = %q, %v; want %s", pid, dir, err, again.Path)
	}
	if err := app.Clear(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if info := <-ch; info.Signal != int(unix.SIGKILL) {
		t.Errorf("leaf process after Clear: %v, want SIGKILL", info)
	}
	if _, err := os.Stat(again.Path); !os.IsNotExist(err) {
		t.Errorf("leaf %s after Clear: %v, want removed", again.Path, err)
	}
	if _, err := os.Stat(app.Path); err != nil {
		t.Errorf("app cgroup after Clear: %v, want kept", err)
	}
}
