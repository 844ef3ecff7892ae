package listen

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

// unixCopy hands u over as a self re-exec does: its state through JSON,
// and its held socket adopted again from a duplicate of its descriptor
// (the exec keeps the descriptor; this process keeps u's too).
func unixCopy(t *testing.T, u *UnixGens) (*Socket, *UnixSteerHandover) {
	t.Helper()
	b, err := json.Marshal(u.Handover())
	if err != nil {
		t.Fatal(err)
	}
	var h UnixSteerHandover
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	cur := u.Current()
	fd, err := unix.FcntlInt(uintptr(cur.FD()), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatal(err)
	}
	ino, hold := cur.Held()
	held, err := AdoptHeld(u.Spec, fd, ino, hold)
	if err != nil {
		t.Fatal(err)
	}
	return held, &h
}

// TestAdoptUnixGens hands a rename-steered Unix listener over (Handover,
// JSON, AdoptUnixGens on duplicates) and checks that the adopted UnixGens
// keeps steering: the serving generation and its queue, a reload's own
// socket and the USR2 child sharing it survive; Serve renames the path to
// that socket; releasing the old generation closes the old socket and its
// hidden name; a later reload gets a socket of its own; a serving socket
// whose generations all exited is handed over as done.
func TestAdoptUnixGens(t *testing.T) {
	dir, public, _, old := steeredUnix(t)
	if _, err := old.Add(1, false); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Add(2, true); err != nil {
		t.Fatal(err)
	}
	old.Share(2, 3)
	dialOn(t, "unix", public)

	held, h := unixCopy(t, old)
	u, err := AdoptUnixGens(held, h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() }) // the test checks closing itself; safe twice
	// The exec closes the handing image's descriptors; the names stay.
	if err := old.Shut(); err != nil {
		t.Fatal(err)
	}
	if u.Current() != held || !u.Serving(1) || u.Serving(2) || u.Serving(3) {
		t.Fatalf("adopted: serving 1 %v 2 %v 3 %v, current is held %v", u.Serving(1), u.Serving(2), u.Serving(3), u.Current() == held)
	}
	if n, err := u.QueueDepth(1); err != nil || n != 1 {
		t.Errorf("QueueDepth(1) = %d, %v; want the connection queued before the hand-over", n, err)
	}
	s2, err := u.Add(2, true)
	if err != nil || s2 == held {
		t.Fatalf("Add(2) = %v, %v; want the adopted socket of its own", s2, err)
	}
	if s3, _ := u.Add(3, true); s3 != s2 {
		t.Error("the USR2 child does not share its parent's adopted socket")
	}
	if now, err := u.Serve(2); err != nil || now != s2 {
		t.Fatalf("Serve(2) = %v, %v", now, err)
	}
	_, hold2 := s2.Held()
	if testInode(t, public) != testInode(t, hold2) {
		t.Fatalf("%s does not name generation 2's socket after Serve", public)
	}
	dialOn(t, "unix", public)
	acceptOne(t, s2.FD())
	acceptOne(t, held.FD()) // queued before the switch: still on the old socket
	if err := u.Release(1); err != nil {
		t.Fatal(err)
	}
	if names := hiddenNames(t, dir); !slices.Equal(names, []string{filepath.Base(hold2)}) {
		t.Errorf("hidden names %v after generation 1 exited, want only %s", names, filepath.Base(hold2))
	}
	s4, err := u.Add(4, true)
	if err != nil || s4 == s2 {
		t.Fatalf("Add(4) for a reload = %v, %v; want a socket of its own", s4, err)
	}
	if err := u.Release(4); err != nil { // rolled back
		t.Fatal(err)
	}
	for _, gen := range []int{2, 3} {
		if err := u.Release(gen); err != nil {
			t.Fatal(err)
		}
	}
	if got := u.Handover(); len(got.ServingGens) != 0 || len(got.Sockets) != 0 {
		t.Errorf("handed over %+v, want the done serving socket alone", got)
	}
}

// TestAdoptUnixGensRefused: a hand-over naming a socket not bound at its
// hidden name is refused; the duplicates are closed, the held socket and
// the generation sockets adopted before stay open, nothing is unlinked.
func TestAdoptUnixGensRefused(t *testing.T) {
	dir, _, _, old := steeredUnix(t)
	for _, gen := range []int{1, 2, 3} {
		if _, err := old.Add(gen, gen > 1); err != nil {
			t.Fatal(err)
		}
	}
	held, h := unixCopy(t, old)
	t.Cleanup(func() { _ = held.Close() }) // the refusal leaves it open
	if len(h.Sockets) != 2 {
		t.Fatalf("handed over %+v, want two generation sockets", h)
	}
	h.Sockets[1].Hold += ".elsewhere"
	names := hiddenNames(t, dir)
	before := openFDs(t)
	if u, err := AdoptUnixGens(held, h); err == nil {
		_ = u.Close()
		t.Fatal("adopted a socket not bound at its hidden name")
	}
	if after := openFDs(t); after != before {
		t.Errorf("%d descriptors open after the refusal, %d before", after, before)
	}
	if held.FD() < 0 {
		t.Error("the refusal closed the held socket")
	}
	if got := hiddenNames(t, dir); !slices.Equal(got, names) {
		t.Errorf("hidden names %v after the refusal, want %v", got, names)
	}
}

// openFDs counts this process's open descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}
