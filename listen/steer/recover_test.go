package steer

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestRecoverGroup: the process that made a group dies (its descriptors
// close without touching the maps) while another process keeps the serving
// listener's socket. A successor opens the group's objects by id around a
// copy of that socket: the socket keeps every new connection, and a
// listener the successor adds takes them over with one Serve.
func TestRecoverGroup(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 3)
	old := ls[1]
	serve(t, g, old)
	ids, err := g.ObjectIDs()
	if err != nil {
		t.Fatalf("ObjectIDs: %v", err)
	}
	survivor, err := unix.FcntlInt(old.File().Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(survivor) }) // the surviving process's copy
	taken, err := unix.FcntlInt(uintptr(survivor), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatal(err)
	}
	addr := g.Addr()
	g.mu.Lock()
	g.abandon() // the owner dies: its descriptors close, the kernel's maps stay
	g.mu.Unlock()

	r, l, err := RecoverGroup(addr, 512, ids, taken)
	if err != nil {
		t.Fatalf("RecoverGroup: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if l.Slot() != old.Slot() || r.Serving() != l {
		t.Fatalf("recovered listener at slot %d (serving: %v), want slot %d serving", l.Slot(), r.Serving() == l, old.Slot())
	}
	const n = 32
	for range n {
		dial(t, addr)
	}
	waitDepth(t, l, n)
	for range n {
		accept(t, l)
	}
	next, err := r.Add()
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	serve(t, r, next)
	for range n {
		dial(t, addr)
	}
	waitDepth(t, next, n)
	if d := depth(t, l); d != 0 {
		t.Errorf("%d connections reached the recovered socket after the switch", d)
	}
	t.Logf("recovered slot %d kept %d connections; the successor's slot %d took the next %d", l.Slot(), n, next.Slot(), n)
}

// TestRecoverGroupRefusesForeignSocket: a socket that is in no slot of the
// group's socket array is refused, and closed.
func TestRecoverGroupRefusesForeignSocket(t *testing.T) {
	requireBPF(t)
	g, _ := newGroup(t, 1)
	ids, err := g.ObjectIDs()
	if err != nil {
		t.Fatalf("ObjectIDs: %v", err)
	}
	other, _ := newGroup(t, 1)
	fd, err := other.Hold()
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := RecoverGroup(other.Addr(), 512, ids, fd); err == nil {
		t.Fatal("RecoverGroup took a socket of another group")
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil {
		t.Errorf("fd %d left open after the refusal", fd)
	}
}

// TestRebuildGroup: as TestRecoverGroup, but the successor cannot open the
// group's objects by id (no CAP_SYS_ADMIN) and gives the reuseport group a
// new program and maps around the surviving socket: it keeps every new
// connection, and a listener the successor adds takes them over with one
// Serve.
func TestRebuildGroup(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 3)
	old := ls[1]
	serve(t, g, old)
	survivor, err := unix.FcntlInt(old.File().Fd(), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(survivor) }) // the surviving process's copy
	taken, err := unix.FcntlInt(uintptr(survivor), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatal(err)
	}
	addr := g.Addr()
	g.mu.Lock()
	g.abandon() // the owner dies: its descriptors close, the kernel's maps stay
	g.mu.Unlock()

	r, l, err := rebuildGroup(addr, 512, taken)
	if err != nil {
		t.Fatalf("rebuildGroup: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	if r.Serving() != l {
		t.Fatal("the rebuilt group's surviving socket does not serve")
	}
	const n = 32
	for range n {
		dial(t, addr)
	}
	waitDepth(t, l, n)
	for range n {
		accept(t, l)
	}
	next, err := r.Add()
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	serve(t, r, next)
	for range n {
		dial(t, addr)
	}
	waitDepth(t, next, n)
	if d := depth(t, l); d != 0 {
		t.Errorf("%d connections reached the surviving socket after the switch", d)
	}
	t.Logf("rebuilt around slot %d, which kept %d connections; the successor's slot %d took the next %d", l.Slot(), n, next.Slot(), n)
}
