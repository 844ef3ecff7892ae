package steer

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const ioTimeout = 5 * time.Second

// requireBPF skips the test when the process cannot load BPF programs and
// fails it when it should be able to but cannot.
func requireBPF(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skipf("BPF steering needs root (CAP_BPF); running as uid %d", os.Geteuid())
	}
	if err := Available(); err != nil {
		t.Fatalf("running as root but BPF steering is unavailable: %v", err)
	}
}

// newGroup returns a group on a free loopback port with n listeners.
func newGroup(t testing.TB, n int) (*Group, []*Listener) {
	t.Helper()
	g, err := NewGroup("127.0.0.1:0", 512)
	if err != nil {
		t.Fatalf("NewGroup: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ls := make([]*Listener, n)
	for i := range ls {
		if ls[i], err = g.Add(); err != nil {
			t.Fatalf("Add #%d: %v", i, err)
		}
	}
	return g, ls
}

// serve calls g.Serve(l) and fails the test on error.
func serve(t testing.TB, g *Group, l *Listener) {
	t.Helper()
	if err := g.Serve(l); err != nil {
		t.Fatalf("Serve(slot %d): %v", l.Slot(), err)
	}
}

// dial connects to addr; the connection is closed at cleanup.
func dial(t testing.TB, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.DialTimeout(addr.Network(), addr.String(), ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = c.Close() }) // a test may have closed it already
	return c
}

// waitDepth polls l's accept queue until it holds want connections.
func waitDepth(t testing.TB, l *Listener, want int) {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		got, err := l.QueueDepth()
		if err != nil {
			t.Fatalf("QueueDepth(slot %d): %v", l.Slot(), err)
		}
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("accept queue of slot %d holds %d connections after %v, want %d", l.Slot(), got, ioTimeout, want)
		}
		time.Sleep(time.Millisecond) // polling interval of a condition with a deadline
	}
}

// depth returns l's accept-queue depth.
func depth(t testing.TB, l *Listener) int {
	t.Helper()
	n, err := l.QueueDepth()
	if err != nil {
		t.Fatalf("QueueDepth(slot %d): %v", l.Slot(), err)
	}
	return n
}

// acceptFD waits up to timeout for a connection on the listening fd and
// accepts it. It returns os.ErrDeadlineExceeded when none arrived.
func acceptFD(fd int, timeout time.Duration) (net.Conn, error) {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	n, err := unix.Poll(pfd, int(timeout.Milliseconds()))
	if errors.Is(err, unix.EINTR) {
		return nil, os.ErrDeadlineExceeded
	}
	if err != nil {
		return nil, fmt.Errorf("poll fd %d: %w", fd, err)
	}
	if n == 0 {
		return nil, os.ErrDeadlineExceeded
	}
	nfd, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("accept fd %d: %w", fd, err)
	}
	f := os.NewFile(uintptr(nfd), "accepted")
	defer f.Close() // net.FileConn holds its own duplicate
	return net.FileConn(f)
}

// accept accepts one connection from l or fails the test.
func accept(t testing.TB, l *Listener) net.Conn {
	t.Helper()
	c, err := acceptFD(int(l.File().Fd()), ioTimeout)
	if err != nil {
		t.Fatalf("accept on slot %d: %v", l.Slot(), err)
	}
	t.Cleanup(func() { _ = c.Close() }) // a test may have closed it already
	return c
}

func TestServeSelectsListener(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 2)
	a, b := ls[0], ls[1]
	const n = 64
	for round, pair := range [][2]*Listener{{a, b}, {b, a}, {a, b}} {
		on, off := pair[0], pair[1]
		serve(t, g, on)
		for range n {
			dial(t, g.Addr())
		}
		waitDepth(t, on, n)
		if d := depth(t, off); d != 0 {
			t.Fatalf("round %d: %d connections reached slot %d, which does not serve", round, d, off.Slot())
		}
		for range n {
			accept(t, on)
		}
		t.Logf("round %d: all %d connections landed on slot %d, none on slot %d", round, n, on.Slot(), off.Slot())
	}
}

func TestUnservedGroupSpreadsByHash(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 2)
	const n = 64
	for range n {
		dial(t, g.Addr())
	}
	deadline := time.Now().Add(ioTimeout)
	for depth(t, ls[0])+depth(t, ls[1]) != n {
		if time.Now().After(deadline) {
			t.Fatalf("queues hold %d+%d connections, want %d in all", depth(t, ls[0]), depth(t, ls[1]), n)
		}
		time.Sleep(time.Millisecond) // polling interval of a condition with a deadline
	}
	t.Logf("no listener serving: kernel hash put %d on slot 0 and %d on slot 1", depth(t, ls[0]), depth(t, ls[1]))
}

func TestQueuedConnectionsMigrateOnClose(t *testing.T) {
	requireBPF(t)
	sysctl, err := MigrateReqSysctl()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("net.ipv4.tcp_migrate_req = %d in this network namespace", sysctl)
	// A third listener c shows the program, not the kernel's hash, chose b.
	g, ls := newGroup(t, 3)
	a, b, c := ls[0], ls[1], ls[2]
	serve(t, g, a)
	const m = 32
	clients := make([]net.Conn, m)
	for i := range clients {
		clients[i] = dial(t, g.Addr())
		if _, err := fmt.Fprintf(clients[i], "hello %02d\n", i); err != nil {
			t.Fatalf("client %d write: %v", i, err)
		}
	}
	waitDepth(t, a, m)
	serve(t, g, b)
	if err := g.Remove(a); err != nil { // the last descriptor of a: the kernel migrates its queue
		t.Fatalf("Remove(a): %v", err)
	}
	if d := depth(t, b); d != m {
		t.Fatalf("after closing slot %d, slot %d holds %d queued connections, want %d migrated", a.Slot(), b.Slot(), d, m)
	}
	if d := depth(t, c); d != 0 {
		t.Fatalf("%d queued connections migrated to slot %d, which does not serve", d, c.Slot())
	}
	got := map[string]bool{}
	for range m {
		got[exchange(t, accept(t, b))] = true
	}
	for i, cl := range clients {
		_ = cl.SetReadDeadline(time.Now().Add(ioTimeout)) // a failed set shows as a read error below
		reply := make([]byte, 3)
		if _, err := io.ReadFull(cl, reply); err != nil || string(reply) != "ok\n" {
			t.Fatalf("client %d: reply %q, err %v (reset instead of migrated?)", i, reply, err)
		}
	}
	if len(got) != m {
		t.Fatalf("slot %d received %d distinct greetings, want %d", b.Slot(), len(got), m)
	}
	t.Logf("all %d connections queued on the closed listener were accepted on slot %d with their data", m, b.Slot())
}

// exchange reads the client's greeting line from c, answers "ok\n" and
// returns the greeting.
func exchange(t testing.TB, c net.Conn) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(ioTimeout)) // a failed set shows as an I/O error below
	buf := make([]byte, len("hello 00\n"))
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read greeting: %v", err)
	}
	if _, err := io.WriteString(c, "ok\n"); err != nil {
		t.Fatalf("write reply: %v", err)
	}
	return string(buf)
}

// TestRemoveKeepsSocketHeldByChild models a generation whose workers
// inherited its listener: Remove closes only the Group's descriptor, so the
// connections queued on it stay until the child exits, and then move to the
// serving listener.
func TestRemoveKeepsSocketHeldByChild(t *testing.T) {
	requireBPF(t)
	sleepPath, err := exec.LookPath("sleep")
	if err != nil {
		t.Skipf("no sleep binary to hold the inherited socket: %v", err)
	}
	g, ls := newGroup(t, 2)
	old, next := ls[0], ls[1]
	serve(t, g, old)
	child := exec.Command(sleepPath, "60")
	child.ExtraFiles = []*os.File{old.File()}
	if err := child.Start(); err != nil {
		t.Fatalf("start %s: %v", sleepPath, err)
	}
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = child.Process.Kill() // the test failed before ending the child itself
			_ = child.Wait()
		}
	})
	const m = 8
	for range m {
		dial(t, g.Addr())
	}
	waitDepth(t, old, m)
	serve(t, g, next)
	if err := g.Remove(old); err != nil {
		t.Fatalf("Remove(old): %v", err)
	}
	if d := depth(t, next); d != 0 {
		t.Fatalf("%d connections left the old listener while a child still holds it", d)
	}
	if err := child.Process.Kill(); err != nil {
		t.Fatalf("kill child: %v", err)
	}
	_ = child.Wait() // "signal: killed" is the expected outcome
	waited = true
	if d := depth(t, next); d != m {
		t.Fatalf("after the child exited, the serving listener holds %d connections, want %d migrated", d, m)
	}
	for range m {
		accept(t, next)
	}
}

// TestSteersAgainAfterEveryListenerLeft empties the group (the kernel frees
// its reuseport group and the attached program with it), then adds new
// listeners on the same port, which must be steered again.
func TestSteersAgainAfterEveryListenerLeft(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 2)
	serve(t, g, ls[0])
	for _, l := range ls {
		if err := g.Remove(l); err != nil {
			t.Fatalf("Remove(slot %d): %v", l.Slot(), err)
		}
	}
	if g.Serving() != nil {
		t.Fatalf("Serving() = slot %d after removing every listener, want none", g.Serving().Slot())
	}
	c, err := g.Add()
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	d, err := g.Add()
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	serve(t, g, d)
	const n = 32
	for range n {
		dial(t, g.Addr())
	}
	waitDepth(t, d, n)
	if got := depth(t, c); got != 0 {
		t.Fatalf("%d connections reached slot %d, which does not serve", got, c.Slot())
	}
}
