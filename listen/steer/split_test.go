package steer

import (
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/e2e"
)

// splitBatch is how many connections tally opens before accepting them:
// below newGroup's backlog, so no SYN is dropped.
const splitBatch = 256

// sourceAddr spreads clients over 127.0.0.1 to 127.0.0.250 with a port
// the kernel picks, so the 4-tuples vary in address and port.
func sourceAddr(i int) *net.TCPAddr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%250))}
}

// landing is where one client's connection was accepted.
type landing struct {
	peer string // the client's ip:port
	at   int    // index of the listener that accepted it
}

// tally opens one connection to g from each of the n addresses local(i)
// returns, accepts each on whichever of ls it reached and closes both ends
// with a reset (no TIME_WAIT keeps a 4-tuple busy, so the kernel may give
// a later client the same one). It returns where each connection landed.
func tally(t *testing.T, g *Group, ls []*Listener, n int, local func(i int) *net.TCPAddr) []landing {
	t.Helper()
	out := make([]landing, 0, n)
	for start := 0; start < n; start += splitBatch {
		clients := make([]net.Conn, 0, splitBatch)
		for i := start; i < min(n, start+splitBatch); i++ {
			clients = append(clients, dialFrom(t, g.Addr(), local(i)))
		}
		for range clients {
			peer, at := acceptAny(t, ls)
			out = append(out, landing{peer: peer, at: at})
		}
		for _, c := range clients {
			_ = c.(*net.TCPConn).SetLinger(0) // a failed set leaves a TIME_WAIT, not a wrong count
			_ = c.Close()
		}
	}
	return out
}

// sides maps each client address of ls to its listener, failing the test
// if one 4-tuple landed on two listeners.
func sides(t *testing.T, ls []landing) map[string]int {
	t.Helper()
	m := make(map[string]int, len(ls))
	for _, l := range ls {
		if at, seen := m[l.peer]; seen && at != l.at {
			t.Fatalf("client %s reached listener %d, earlier %d", l.peer, l.at, at)
		}
		m[l.peer] = l.at
	}
	return m
}

// dialFrom connects to addr from local, with SO_REUSEADDR so a 4-tuple a
// reset just freed can be bound again.
func dialFrom(t *testing.T, addr net.Addr, local *net.TCPAddr) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: local, Timeout: ioTimeout, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR, 1) })
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr.String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	return c
}

// acceptAny waits for a connection on any of ls, accepts it, closes it with
// a reset and returns its peer address and the index of its listener.
func acceptAny(t *testing.T, ls []*Listener) (string, int) {
	t.Helper()
	pfd := make([]unix.PollFd, len(ls))
	for i, l := range ls {
		pfd[i] = unix.PollFd{Fd: int32(l.File().Fd()), Events: unix.POLLIN}
	}
	for {
		n, err := unix.Poll(pfd, int(ioTimeout.Milliseconds()))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("no connection reached any listener within %v (poll: %v)", ioTimeout, err)
		}
		break
	}
	for i, p := range pfd {
		if p.Revents&unix.POLLIN == 0 {
			continue
		}
		nfd, sa, err := unix.Accept4(int(p.Fd), unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatalf("accept on slot %d: %v", ls[i].Slot(), err)
		}
		_ = unix.SetsockoptLinger(nfd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}) // see tally
		_ = unix.Close(nfd)                                                                     // a reset close reports nothing to check
		in4, ok := sa.(*unix.SockaddrInet4)
		if !ok {
			t.Fatalf("accepted a peer of type %T, want IPv4", sa)
		}
		return (&net.TCPAddr{IP: net.IP(in4.Addr[:]), Port: in4.Port}).String(), i
	}
	t.Fatal("poll reported a listener ready but none was")
	return "", -1
}

// counts returns how many of ls reached each of k listeners.
func counts(ls []landing, k int) []int {
	out := make([]int, k)
	for _, l := range ls {
		out[l.at]++
	}
	return out
}

// split calls g.Split and fails the test on error.
func split(t *testing.T, g *Group, serving, canary *Listener, share float64) {
	t.Helper()
	if err := g.Split(serving, canary, share); err != nil {
		t.Fatalf("Split(slot %d, slot %d, %v): %v", serving.Slot(), canary.Slot(), share, err)
	}
}

// TestSplitShares measures the canary's share of new connections from
// varied 4-tuples at 10 % and 50 %: within 2 points of the split, over
// 20,000 connections with E2E_FULL=1 and 10,000 otherwise.
func TestSplitShares(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 2)
	n := e2e.Runs(20000, 10000)
	for _, share := range []float64{0.10, 0.50} {
		split(t, g, ls[0], ls[1], share)
		landed := tally(t, g, ls, n, sourceAddr)
		c := counts(landed, 2)
		got := float64(c[1]) / float64(n)
		t.Logf("split %.0f %%: canary received %d of %d new connections (%.2f %%), serving %d; %d distinct 4-tuples",
			share*100, c[1], n, got*100, c[0], len(sides(t, landed)))
		if math.Abs(got-share) > 0.02 {
			t.Fatalf("split %.0f %%: canary share %.2f %%, want within 2 points", share*100, got*100)
		}
		if c2, want := g.Canary(); c2 != ls[1] || math.Abs(want-share) > 1e-9 {
			t.Fatalf("Canary() = slot %v at %v, want slot %d at %v", c2, want, ls[1].Slot(), share)
		}
	}
}

// TestSplitEdgesAreExact: share 0 sends every new connection to the
// serving listener (as Serve does), share 1 every one to the canary, and a
// third listener outside the split receives none.
func TestSplitEdgesAreExact(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 3)
	const n = 2000
	for _, tc := range []struct {
		share float64
		want  []int
	}{{0, []int{n, 0, 0}}, {1, []int{0, n, 0}}, {0, []int{n, 0, 0}}} {
		split(t, g, ls[0], ls[1], tc.share)
		c := counts(tally(t, g, ls, n, sourceAddr), 3)
		t.Logf("split %.0f %%: serving %d, canary %d, outside %d", tc.share*100, c[0], c[1], c[2])
		if fmt.Sprint(c) != fmt.Sprint(tc.want) {
			t.Fatalf("split %.0f %%: serving, canary, outside received %v, want %v", tc.share*100, c, tc.want)
		}
	}
	if l, share := g.Canary(); l != nil || share != 0 {
		t.Fatalf("after a split of 0, Canary() = %v at %v, want none", l, share)
	}
}

// TestSplitSticksByTuple reconnects from the same 4-tuples: each lands on
// the same side every time while the split stays.
func TestSplitSticksByTuple(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 2)
	split(t, g, ls[0], ls[1], 0.5)
	const n, rounds = 300, 4
	first := sides(t, tally(t, g, ls, n, sourceAddr))
	tuples := make([]*net.TCPAddr, 0, len(first))
	c := make([]int, 2)
	for a, at := range first {
		tuples = append(tuples, mustTCPAddr(t, a))
		c[at]++
	}
	for round := range rounds {
		for _, l := range tally(t, g, ls, len(tuples), func(i int) *net.TCPAddr { return tuples[i] }) {
			if first[l.peer] != l.at {
				t.Fatalf("round %d: client %s reached listener %d, first time %d", round, l.peer, l.at, first[l.peer])
			}
		}
	}
	t.Logf("%d 4-tuples (%d to the canary, %d to serving) each landed on the same side in %d more rounds", len(tuples), c[1], c[0], rounds)
	if c[0] == 0 || c[1] == 0 {
		t.Fatalf("a 50 %% split sent %v: one side received nothing", c)
	}
}

// mustTCPAddr parses a client address tally returned.
func mustTCPAddr(t *testing.T, s string) *net.TCPAddr {
	t.Helper()
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return a
}

// queueGreetings dials m clients that each send a greeting, and waits until
// l holds them all.
func queueGreetings(t *testing.T, g *Group, l *Listener, m int) []net.Conn {
	t.Helper()
	clients := make([]net.Conn, m)
	for i := range clients {
		clients[i] = dial(t, g.Addr())
		if _, err := fmt.Fprintf(clients[i], "hello %02d\n", i); err != nil {
			t.Fatalf("client %d write: %v", i, err)
		}
	}
	waitDepth(t, l, m)
	return clients
}

// answerAll accepts len(clients) connections on l, answers each and checks
// every client got its answer (none was reset).
func answerAll(t *testing.T, l *Listener, clients []net.Conn) {
	t.Helper()
	for range clients {
		exchange(t, accept(t, l))
	}
	for i, cl := range clients {
		_ = cl.SetReadDeadline(time.Now().Add(ioTimeout)) // a failed set shows as a read error below
		reply := make([]byte, 3)
		if _, err := io.ReadFull(cl, reply); err != nil || string(reply) != "ok\n" {
			t.Fatalf("client %d: reply %q, err %v (reset instead of migrated?)", i, reply, err)
		}
	}
}

// TestRemovedCanaryQueueMigratesToServing: the canary's queued connections
// move to the serving listener when the canary is removed, and the split
// ends. A third listener shows the program, not the kernel's hash, chose.
func TestRemovedCanaryQueueMigratesToServing(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 3)
	serving, canary, other := ls[0], ls[1], ls[2]
	split(t, g, serving, canary, 1)
	const m = 32
	clients := queueGreetings(t, g, canary, m)
	if err := g.Remove(canary); err != nil {
		t.Fatalf("Remove(canary): %v", err)
	}
	if d, o := depth(t, serving), depth(t, other); d != m || o != 0 {
		t.Fatalf("after removing the canary, serving holds %d and the other listener %d, want %d and 0", d, o, m)
	}
	answerAll(t, serving, clients)
	if l, share := g.Canary(); l != nil || share != 0 {
		t.Fatalf("after removing the canary, Canary() = %v at %v, want none", l, share)
	}
	t.Logf("all %d connections queued on the removed canary were answered from the serving listener", m)
}

// TestClosingServingMigratesToCanary stops the serving listener while the
// steering map still names it (as when a child holding its last descriptor
// exits): the program migrates its queue to the canary.
func TestClosingServingMigratesToCanary(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 3)
	serving, canary, other := ls[0], ls[1], ls[2]
	serve(t, g, serving)
	const m = 32
	clients := queueGreetings(t, g, serving, m)
	split(t, g, serving, canary, 0.5)
	// shutdown(SHUT_RD) of a listening socket stops it as its last close
	// would: it leaves the socket array, then its queue migrates.
	if err := unix.Shutdown(int(serving.File().Fd()), unix.SHUT_RD); err != nil {
		t.Fatalf("shutdown serving listener: %v", err)
	}
	if d, o := depth(t, canary), depth(t, other); d != m || o != 0 {
		t.Fatalf("after the serving listener stopped, the canary holds %d and the other listener %d, want %d and 0", d, o, m)
	}
	answerAll(t, canary, clients)
	t.Logf("all %d connections queued on the stopped serving listener were answered from the canary", m)
}

// TestSplitRefusesBadInput: shares outside [0, 1] and a canary that is the
// serving listener are refused, and the steering is left as it was.
func TestSplitRefusesBadInput(t *testing.T) {
	requireBPF(t)
	g, ls := newGroup(t, 2)
	split(t, g, ls[0], ls[1], 0.25)
	for _, tc := range []struct {
		canary *Listener
		share  float64
	}{{ls[1], -0.1}, {ls[1], 1.5}, {ls[1], math.NaN()}, {ls[0], 0.5}} {
		if err := g.Split(ls[0], tc.canary, tc.share); err == nil {
			t.Fatalf("Split(slot 0, slot %d, %v) succeeded, want an error", tc.canary.Slot(), tc.share)
		} else {
			t.Logf("Split(slot 0, slot %d, %v): %v", tc.canary.Slot(), tc.share, err)
		}
	}
	if l, share := g.Canary(); l != ls[1] || share != 0.25 {
		t.Fatalf("after refused splits, Canary() = %v at %v, want slot 1 at 0.25", l, share)
	}
}
