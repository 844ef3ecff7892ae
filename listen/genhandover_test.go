package listen

import (
	"encoding/json"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// TestAdoptSteered hands a steered listener over as a self re-exec does
// (Handover, JSON, AdoptSteered on the same descriptors) and checks that
// the adopted GenSockets keeps steering: the serving generation, its queue
// and the USR2 sharing survive; a later generation gets its own socket and
// receives connections only once it serves; Release closes a socket and
// its queue moves to the serving one.
func TestAdoptSteered(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable: %v", err)
	}
	spec := config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 16}
	old, held, err := BindSteered(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = held.Close() }) // closed once, at the end
	for _, gen := range []int{1, 2} {
		if _, err := old.Add(gen); err != nil {
			t.Fatal(err)
		}
	}
	old.Share(2, 3)
	if err := old.Serve(1); err != nil {
		t.Fatal(err)
	}
	dial(t, held.Bound)
	waitDepth(t, old, 1, 1)

	b, err := json.Marshal(old.Handover())
	if err != nil {
		t.Fatal(err)
	}
	var h SteerHandover
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	gs, err := AdoptSteered(spec, held, &h)
	if err != nil {
		t.Fatal(err)
	}
	// The exec closes the handing image's copies of the generation
	// sockets; its BPF objects are closed last (their removals then fail
	// on the slots the adopted group already cleared, which is expected).
	for _, l := range old.group.Listeners() {
		if l != nil {
			if err := l.File().Close(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		if err := gs.Close(); err != nil {
			t.Error(err)
		}
		_ = old.Close() // see above
	})
	if !gs.Serving(1) || gs.Serving(2) || gs.Serving(3) {
		t.Fatalf("after adoption: serving 1/2/3 = %v/%v/%v, want true/false/false", gs.Serving(1), gs.Serving(2), gs.Serving(3))
	}
	waitDepth(t, gs, 1, 1)
	dial(t, held.Bound)
	waitDepth(t, gs, 1, 2)
	waitDepth(t, gs, 2, 0)

	fd4, err := gs.Add(4)
	if err != nil {
		t.Fatal(err)
	}
	dial(t, held.Bound)
	waitDepth(t, gs, 1, 3)
	waitDepth(t, gs, 4, 0)
	if err := gs.Serve(4); err != nil {
		t.Fatal(err)
	}
	if err := gs.Release(1); err != nil { // its queue moves to generation 4's socket
		t.Fatal(err)
	}
	waitDepth(t, gs, 4, 3)
	if fd := gs.ServingFD(); fd != fd4 {
		t.Errorf("ServingFD = %d, want %d", fd, fd4)
	}
	if err := gs.Release(2); err != nil {
		t.Fatal(err)
	}
	if n, err := gs.QueueDepth(3); err != nil || n != 0 {
		t.Errorf("the USR2 child lost its parent's socket: depth %d, %v", n, err)
	}
}

// TestAdoptSteeredRefuses: a hand-over whose map is not a socket array,
// or whose generation socket does not listen, is refused; the caller's
// descriptors stay open and the group stays steered as it was.
func TestAdoptSteeredRefuses(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable: %v", err)
	}
	spec := config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 16}
	gs, held, err := BindSteered(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gs.Close(); err != nil {
			t.Error(err)
		}
		if err := held.Close(); err != nil {
			t.Error(err)
		}
	})
	for _, gen := range []int{1, 2} {
		if _, err := gs.Add(gen); err != nil {
			t.Fatal(err)
		}
	}
	if err := gs.Serve(1); err != nil {
		t.Fatal(err)
	}
	idle, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Close(idle) }) // a test socket; nothing to check
	for name, spoil := range map[string]func(h *SteerHandover){
		"map": func(h *SteerHandover) { h.SocketsFD = held.FD() },
		// after generation 1's socket was adopted
		"socket": func(h *SteerHandover) { h.Sockets[1].FD = idle },
	} {
		h := gs.Handover()
		spoil(h)
		if _, err := AdoptSteered(spec, held, h); err == nil {
			t.Fatalf("adopted a hand-over with a bad %s", name)
		}
		for _, fd := range h.FDs() {
			if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
				t.Errorf("bad %s: fd %d closed by a refused adoption: %v", name, fd, err)
			}
		}
	}
	dial(t, held.Bound)
	waitDepth(t, gs, 1, 1)
}
