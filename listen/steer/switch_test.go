package steer

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// acceptor accepts from l until stop is closed and l's queue is empty,
// counts each connection and answers it with one byte.
type acceptor struct {
	l        *Listener
	accepted atomic.Int64
	stop     chan struct{}
	done     chan error
}

func startAcceptor(l *Listener) *acceptor {
	a := &acceptor{l: l, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() { a.done <- a.run() }()
	return a
}

func (a *acceptor) run() error {
	fd := int(a.l.File().Fd())
	for {
		c, err := acceptFD(fd, 10*time.Millisecond)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			select {
			case <-a.stop:
				if n, err := a.l.QueueDepth(); err != nil || n == 0 {
					return err
				}
			default:
			}
			continue
		}
		if err != nil {
			return err
		}
		a.accepted.Add(1) // before the answer, so a client's success implies the count
		_, werr := c.Write([]byte{'k'})
		cerr := c.Close()
		if werr != nil || cerr != nil {
			return fmt.Errorf("answer on slot %d: %w", a.l.Slot(), errors.Join(werr, cerr))
		}
	}
}

// drain stops the acceptor once its queue is empty and returns its error.
func (a *acceptor) drain(t testing.TB) {
	t.Helper()
	close(a.stop)
	select {
	case err := <-a.done:
		if err != nil {
			t.Fatalf("acceptor on slot %d: %v", a.l.Slot(), err)
		}
	case <-time.After(ioTimeout):
		t.Fatalf("acceptor on slot %d did not drain within %v", a.l.Slot(), ioTimeout)
	}
}

// connectOnce dials addr and reads the one-byte answer.
func connectOnce(addr string) error {
	c, err := net.DialTimeout("tcp", addr, ioTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetReadDeadline(time.Now().Add(ioTimeout)) // a failed set shows as a read error below
	b := make([]byte, 1)
	if _, err := c.Read(b); err != nil {
		return fmt.Errorf("read answer from %s: %w", addr, err)
	}
	return nil
}

// TestSwitchUnderConnectLoopLosesNothing swaps generations the way the
// supervisor will (serve the new listener, let the old one drain its queue,
// close it) while clients connect in a loop, and requires every connection
// to be answered.
func TestSwitchUnderConnectLoopLosesNothing(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 2)
	old, next := ls[0], ls[1]
	serve(t, g, old)
	accOld, accNext := startAcceptor(old), startAcceptor(next)
	t.Cleanup(func() { accNext.drain(t) })

	const clients, perClient = 4, 300
	results := make(chan error, clients*perClient)
	var wg sync.WaitGroup
	addr := g.Addr().String()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				results <- connectOnce(addr)
			}
		}()
	}
	var failed, oldAtSwitch int64
	for i := range clients * perClient {
		if err := <-results; err != nil {
			failed++
			t.Errorf("connection %d: %v", i, err)
		}
		switch i {
		case clients * perClient / 3:
			serve(t, g, next)
			oldAtSwitch = accOld.accepted.Load()
		case 2 * clients * perClient / 3:
			accOld.drain(t)
			if err := g.Remove(old); err != nil {
				t.Fatalf("Remove(old): %v", err)
			}
		}
	}
	wg.Wait()
	total := accOld.accepted.Load() + accNext.accepted.Load()
	late := accOld.accepted.Load() - oldAtSwitch
	t.Logf("%d connections: %d on old (%d accepted after the switch), %d on new, %d failed",
		clients*perClient, accOld.accepted.Load(), late, accNext.accepted.Load(), failed)
	if failed != 0 || total != clients*perClient {
		t.Fatalf("accepted %d of %d connections, %d failed", total, clients*perClient, failed)
	}
	if late > clients { // each client has at most one connection in flight at the switch
		t.Fatalf("old listener accepted %d connections after the switch, more than the %d in flight", late, clients)
	}
}
