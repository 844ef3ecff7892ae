package steer

import (
	"errors"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRequeueMovesHolderQueueToServing: a connection made while the group
// has only its holder (port 0) waits there; once a listener serves,
// Requeue moves it to that listener, and the holder listens again on the
// same port, taking no new connection.
func TestRequeueMovesHolderQueueToServing(t *testing.T) {
	requireBPF(t)
	g, _ := newGroup(t, 0)
	hold, err := g.Hold()
	if err != nil {
		t.Fatalf("Hold: %v", err)
	}
	t.Cleanup(func() { _ = unix.Close(hold) }) // the test's own descriptor
	addr := g.Addr()
	if err := g.Requeue(hold); !errors.Is(err, ErrNoServing) {
		t.Fatalf("Requeue with none serving: %v, want ErrNoServing", err)
	}
	dial(t, addr)
	if n, err := HolderQueue(hold); err != nil || n != 1 {
		t.Fatalf("holder queue before a listener serves: %d %v, want 1", n, err)
	}
	l, err := g.Add()
	if err != nil {
		t.Fatalf("Add: %v", err)
	}
	serve(t, g, l)
	if err := g.Requeue(hold); err != nil {
		t.Fatalf("Requeue: %v", err)
	}
	waitDepth(t, l, 1)
	if n, err := HolderQueue(hold); err != nil || n != 0 {
		t.Errorf("holder queue after Requeue: %d %v, want 0", n, err)
	}
	sa, err := unix.Getsockname(hold)
	if in4, ok := sa.(*unix.SockaddrInet4); err != nil || !ok || in4.Port != addr.Port {
		t.Fatalf("holder after Requeue: %+v %v, want port %d", sa, err, addr.Port)
	}
	dial(t, &net.TCPAddr{IP: addr.IP, Port: addr.Port})
	waitDepth(t, l, 2)
}
