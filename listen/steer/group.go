package steer

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"sync"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ErrClosed is returned by the methods of a Group after Close.
var ErrClosed = errors.New("steer: group closed")

// Group is one TCP address served by several listening sockets (one per
// generation) in one SO_REUSEPORT group, with a BPF program that sends each
// new connection to the serving listener. All methods are safe for
// concurrent use; Close is safe twice.
type Group struct {
	mu      sync.Mutex
	addr    *net.TCPAddr // the port is the bound one once a listener exists
	backlog int
	objs    *kernelObjects
	slots   [MaxListeners]*Listener
	serving *Listener
	// canary receives the new connections whose hash is below threshold
	// (see steeringValue); nil with threshold 0 when no split is set.
	canary    *Listener
	threshold uint64
	closed    bool
}

// Listener is one listening socket of a Group.
type Listener struct {
	group *Group
	slot  uint32
	file  *os.File
	addr  *net.TCPAddr
}

// NewGroup prepares a group for addr ("host:port"; port 0 takes the port the
// first Add binds, and every later Add binds the same one). It loads the BPF
// objects but binds nothing. It fails, with the reason, where Available
// would.
func NewGroup(addr string, backlog int) (*Group, error) {
	tcpAddr, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("steer: resolve %q: %w", addr, err)
	}
	if backlog <= 0 {
		return nil, fmt.Errorf("steer: backlog %d for %q: must be positive", backlog, addr)
	}
	objs, err := loadObjects()
	if err != nil {
		return nil, err
	}
	return &Group{addr: tcpAddr, backlog: backlog, objs: objs}, nil
}

// Addr returns the group's address; its port is the bound one after the
// first Add.
func (g *Group) Addr() *net.TCPAddr {
	g.mu.Lock()
	defer g.mu.Unlock()
	a := *g.addr
	return &a
}

// Add binds and listens on a new socket in the group and puts it in a free
// slot of the socket array. It receives no new connection until Serve
// selects it, except while no listener serves (then the kernel's hash
// spreads connections over all listeners). It fails when MaxListeners are
// in the group.
func (g *Group) Add() (*Listener, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, ErrClosed
	}
	slot, ok := g.freeSlot()
	if !ok {
		return nil, fmt.Errorf("steer: add listener on %s: all %d slots in use", g.addr, MaxListeners)
	}
	fd, bound, err := listenReusePort(g.addr, g.backlog)
	if err != nil {
		return nil, err
	}
	if err := g.enrol(fd, slot); err != nil {
		_ = unix.Close(fd) // the enrolment error is the one to report
		return nil, err
	}
	g.addr = bound
	l := &Listener{
		group: g, slot: slot, addr: bound,
		file: os.NewFile(uintptr(fd), fmt.Sprintf("steer:%s#%d", bound, slot)),
	}
	g.slots[slot] = l
	return l, nil
}

// freeSlot returns the lowest unused slot.
func (g *Group) freeSlot() (uint32, bool) {
	for i, l := range g.slots {
		if l == nil {
			return uint32(i), true
		}
	}
	return 0, false
}

// enrol attaches the program to fd's reuseport group (replacing the same
// program if a sibling attached it already, which keeps the group steered
// even if every earlier listener is gone) and stores fd at slot.
func (g *Group) enrol(fd int, slot uint32) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, g.objs.prog.FD())
	if err != nil {
		return fmt.Errorf("steer: attach program to %s (fd %d): %w", g.addr, fd, err)
	}
	if err := g.objs.sockets.Put(slot, uint64(fd)); err != nil {
		return fmt.Errorf("steer: put fd %d of %s at slot %d: %w", fd, g.addr, slot, err)
	}
	return nil
}

// Serve makes l the listener that receives every new connection, with one
// map update, and ends any split. Connections already queued on other
// listeners stay there.
func (g *Group) Serve(l *Listener) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.check(l); err != nil {
		return err
	}
	if err := g.steer(l, nil, 0); err != nil {
		return fmt.Errorf("steer: serve slot %d of %s: %w", l.slot, g.addr, err)
	}
	return nil
}

// wholeShare is the threshold of a share of 1: every 32-bit hash is below.
const wholeShare = 1 << 32

// Split sends a share (0 to 1) of the new connections to canary and the
// rest to serving, with one map update. The kernel's hash of a
// connection's 4-tuple decides: a connection whose hash, as a fraction of
// 2^32, is below share goes to canary, so the same 4-tuple lands on the
// same listener for as long as the split stays. Connections migrating off
// a closing listener go to serving, or to canary while serving is the one
// closing. A share of 0 is Serve(serving). Connections already queued stay
// where they are. It fails for a share outside [0, 1], for canary equal to
// serving, and with ErrSplitUnsupported for a group adopted from an image
// whose program cannot split.
func (g *Group) Split(serving, canary *Listener, share float64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.check(serving); err != nil {
		return err
	}
	if err := g.check(canary); err != nil {
		return err
	}
	if !(share >= 0 && share <= 1) { // also refuses NaN
		return fmt.Errorf("steer: split of %s: share %v is outside [0, 1]", g.addr, share)
	}
	if serving == canary {
		return fmt.Errorf("steer: split of %s: canary and serving are the same listener (slot %d)", g.addr, serving.slot)
	}
	to := canary
	if share == 0 {
		to = nil
	}
	if err := g.steer(serving, to, uint64(math.Round(share*wholeShare))); err != nil {
		return fmt.Errorf("steer: split %s between slot %d and canary slot %d at share %.4f: %w", g.addr, serving.slot, canary.slot, share, err)
	}
	return nil
}

// steer writes the steering value of serving, canary (nil: none) and
// threshold with one map update, then records it; g.mu is held.
func (g *Group) steer(serving, canary *Listener, threshold uint64) error {
	v := steeringValue{Serving: slotIndex(serving), Canary: slotIndex(canary), Threshold: threshold}
	if err := g.objs.put(v); err != nil {
		return err
	}
	g.serving, g.canary, g.threshold = serving, canary, threshold
	return nil
}

// slotIndex is l's slot, or noSlot for nil.
func slotIndex(l *Listener) uint32 {
	if l == nil {
		return noSlot
	}
	return l.slot
}

// Canary returns the canary listener and the share of new connections it
// receives, or nil and 0 when no split is set.
func (g *Group) Canary() (*Listener, float64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.canary, float64(g.threshold) / wholeShare
}

// Serving returns the serving listener, or nil if none serves.
func (g *Group) Serving() *Listener {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.serving
}

// Remove takes l out of the group and closes the Group's descriptor of it.
// The socket closes when its last descriptor does (children that inherited
// it may hold it longer); then the connections still queued on it move to
// the serving listener. Removing the canary ends the split; removing the
// serving listener makes the canary, if any, serve every new connection,
// else leaves none serving.
func (g *Group) Remove(l *Listener) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err := g.check(l); err != nil {
		return err
	}
	return g.remove(l)
}

// remove does Remove with g.mu held.
func (g *Group) remove(l *Listener) error {
	var errs []error
	if next, ok := g.without(l); ok {
		if err := g.steer(next, nil, 0); err != nil {
			errs = append(errs, fmt.Errorf("steer: take slot %d of %s out of the steering: %w", l.slot, g.addr, err))
			g.serving, g.canary, g.threshold = next, nil, 0 // l is gone whatever the map says
		}
	}
	// An empty slot is no error: a socket that stopped listening (a
	// shutdown in any process holding it) left the array by itself.
	if err := g.objs.sockets.Delete(l.slot); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		errs = append(errs, fmt.Errorf("steer: delete slot %d of %s: %w", l.slot, g.addr, err))
	}
	if err := l.file.Close(); err != nil {
		errs = append(errs, fmt.Errorf("steer: close listener at slot %d of %s: %w", l.slot, g.addr, err))
	}
	g.slots[l.slot] = nil
	return errors.Join(errs...)
}

// without returns the listener to serve once l leaves, and whether l is
// in the steering at all (serving or canary); g.mu is held.
func (g *Group) without(l *Listener) (*Listener, bool) {
	switch l {
	case g.canary:
		return g.serving, true
	case g.serving:
		return g.canary, true
	}
	return nil, false
}

// check returns an error unless the group is open and l is one of its
// current listeners.
func (g *Group) check(l *Listener) error {
	if g.closed {
		return ErrClosed
	}
	if l == nil || l.group != g || g.slots[l.slot] != l {
		return fmt.Errorf("steer: listener is not in the group on %s", g.addr)
	}
	return nil
}

// Close removes every listener and frees the BPF objects. Sockets still
// held by children keep the program attached until they close. Close is
// safe twice; the second call returns nil.
func (g *Group) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil
	}
	var errs []error
	for _, l := range g.slots {
		if l != nil {
			errs = append(errs, g.remove(l))
		}
	}
	g.objs.close()
	g.closed = true
	return errors.Join(errs...)
}

// File returns the listening socket. The Group owns it: pass it to children
// (exec.Cmd.ExtraFiles duplicates it) or Dup it, but do not close it; Remove
// and Close do.
func (l *Listener) File() *os.File { return l.file }

// Addr returns the bound address.
func (l *Listener) Addr() *net.TCPAddr { a := *l.addr; return &a }

// Slot returns the listener's index in the group's socket array.
func (l *Listener) Slot() int { return int(l.slot) }

// QueueDepth returns how many established connections wait in the
// listener's accept queue.
func (l *Listener) QueueDepth() (int, error) {
	info, err := unix.GetsockoptTCPInfo(int(l.file.Fd()), unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, fmt.Errorf("steer: TCP_INFO of listener %s: %w", l.file.Name(), err)
	}
	return int(info.Unacked), nil
}

// Hold binds and listens on a socket of the group's address (with backlog 1)
// that is in the reuseport group but in no slot: it keeps the address bound
// while no listener is, and receives a connection only while no listener
// serves (the kernel's hash then may pick it). It attaches the group's
// program, so a group whose listeners are all gone stays steered. The
// caller owns the returned descriptor (close-on-exec, blocking).
func (g *Group) Hold() (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return -1, ErrClosed
	}
	fd, bound, err := listenReusePort(g.addr, 1)
	if err != nil {
		return -1, err
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, g.objs.prog.FD()); err != nil {
		_ = unix.Close(fd) // the attach error is the one to report
		return -1, fmt.Errorf("steer: attach program to holder of %s: %w", g.addr, err)
	}
	g.addr = bound
	return fd, nil
}

// Requeue moves the connections queued on fd, a socket Hold returned, to
// the serving listener and leaves fd listening again on the same address.
// Nobody accepts from a holder; the kernel's hash puts connections on it
// only while no listener serves. It stops fd listening (shutdown SHUT_RD:
// the kernel runs the group's program for each queued connection, which
// selects the serving listener, as when a listener closes) and listens
// again, binding the group's port afresh where the shutdown released it
// (a holder bound to port 0 loses its port with the shutdown). The serving listener keeps the address
// reachable meanwhile. It fails with ErrNoServing while no listener
// serves (the queue would have nowhere to go).
func (g *Group) Requeue(fd int) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ErrClosed
	}
	if g.serving == nil {
		return ErrNoServing
	}
	if err := unix.Shutdown(fd, unix.SHUT_RD); err != nil {
		return fmt.Errorf("steer: stop holder of %s (fd %d) listening: %w", g.addr, fd, err)
	}
	// EINVAL: the socket kept its port (it was bound to a given one).
	_, want := sockaddr(g.addr)
	if err := unix.Bind(fd, want); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("steer: bind holder of %s (fd %d) again: %w", g.addr, fd, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		return fmt.Errorf("steer: listen on holder of %s (fd %d) again: %w", g.addr, fd, err)
	}
	return nil
}

// ErrNoServing is returned by Requeue while no listener serves.
var ErrNoServing = errors.New("steer: no listener serves")

// HolderQueue returns how many established connections wait on fd, a
// socket Hold returned.
func HolderQueue(fd int) (int, error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return 0, fmt.Errorf("steer: TCP_INFO of holder fd %d: %w", fd, err)
	}
	return int(info.Unacked), nil
}
