package listen

import (
	"errors"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// TestGenSockets walks one steered listener through a reload: the new
// generation's socket gets nothing before Serve; a serving generation that
// exits keeps its queue until Serve moves on, and that queue then moves to
// the new socket (no reset); a USR2 child shares its parent's socket.
func TestGenSockets(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable: %v", err)
	}
	gs, held, err := BindSteered(config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gs.Close(); err != nil {
			t.Error(err)
		}
		if err := gs.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if err := held.Close(); err != nil {
			t.Error(err)
		}
	})
	if _, err := gs.Add(1); err != nil {
		t.Fatal(err)
	}
	if err := gs.Serve(1); err != nil {
		t.Fatal(err)
	}
	dial(t, held.Bound)
	fd2, err := gs.Add(2)
	if err != nil {
		t.Fatal(err)
	}
	dial(t, held.Bound)
	waitDepth(t, gs, 1, 2)
	waitDepth(t, gs, 2, 0)

	if err := gs.Release(1); err != nil { // exits while serving: its queue stays
		t.Fatal(err)
	}
	waitDepth(t, gs, 1, 2)
	if err := gs.Serve(2); err != nil {
		t.Fatal(err)
	}
	waitDepth(t, gs, 2, 2) // generation 1's socket closed; its queue migrated
	for range 2 {
		nfd, _, err := unix.Accept(fd2)
		if err != nil {
			t.Fatalf("accept a migrated connection: %v", err)
		}
		_ = unix.Close(nfd) // accepted: the connection was not reset
	}

	gs.Share(2, 3)
	if err := gs.Release(2); err != nil {
		t.Fatal(err)
	}
	if !gs.Serving(3) {
		t.Error("the USR2 child does not serve on its parent's socket")
	}
	if fd := gs.ServingFD(); fd != fd2 {
		t.Errorf("ServingFD = %d, want %d", fd, fd2)
	}
}

// dial opens a connection that waits in a listener's accept queue; the
// test's cleanup closes it.
func dial(t *testing.T, addr string) {
	t.Helper()
	dialOn(t, "tcp", addr)
}

// dialOn connects to addr over network; the connection closes when t ends.
func dialOn(t *testing.T, network, addr string) {
	t.Helper()
	c, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() }) // the peer may be gone; nothing to check
}

// waitDepth polls gen's queue depth until it is want.
func waitDepth(t *testing.T, gs *GenSockets, gen, want int) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		n, err := gs.QueueDepth(gen)
		if err != nil {
			t.Fatal(err)
		}
		if n == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("generation %d queue depth %d, want %d", gen, n, want)
		}
		time.Sleep(time.Millisecond) // polling the kernel's counter; no event to wait on
	}
}

// TestGenSocketsStandbyBeforeFirstGeneration: connections made between
// BindSteered and the first generation's Add wait on the standby socket,
// which generation 1 takes with them; none waits on the holder.
func TestGenSocketsStandbyBeforeFirstGeneration(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable: %v", err)
	}
	gs, held, err := BindSteered(config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 16})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := errors.Join(gs.Close(), held.Close()); err != nil {
			t.Error(err)
		}
	})
	for range 8 {
		dial(t, held.Bound)
	}
	if _, err := gs.Add(1); err != nil {
		t.Fatal(err)
	}
	waitDepth(t, gs, 1, 8)
	if n, err := steer.HolderQueue(held.FD()); err != nil || n != 0 {
		t.Errorf("holder queue: %d %v, want 0", n, err)
	}
	if _, err := gs.ServeGen(1, held); err != nil {
		t.Fatal(err)
	}
	if !gs.Serving(1) {
		t.Error("generation 1 does not serve after ServeGen")
	}
}
