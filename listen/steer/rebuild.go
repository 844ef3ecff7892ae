package steer

import (
	"errors"
	"fmt"
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// releaseLimit bounds how long rebuildGroup waits for the kernel to free
// the dead owner's socket array, which frees fd's entry in it.
const releaseLimit = 5 * time.Second

// rebuildGroup makes a Group with new BPF objects around fd, a socket
// listening on addr that a surviving process holds, and makes fd its
// serving listener at slot 0. Attaching the new program through fd
// replaces the reuseport group's program; the old program, and with it the
// old maps, are freed once nothing else refers to them. A socket is in at
// most one socket array (the kernel answers EBUSY until the old one is
// freed), so between the attach and fd's entry in the new array the
// kernel's hash spreads new connections over the group's listening sockets
// (the survivors' only, as the old owner's are closed): none is refused.
// rebuildGroup owns fd: on error it is closed; an error after the attach
// leaves the group with the new program and no serving socket (hash
// spreading, as ModeShared needs) and says so.
func rebuildGroup(addr *net.TCPAddr, backlog int, fd int) (*Group, *Listener, error) {
	objs, err := loadObjects()
	if err != nil {
		_ = unix.Close(fd) // the load error is the one to report
		return nil, nil, fmt.Errorf("steer: rebuild steering of %s: %w", addr, err)
	}
	g := &Group{addr: addr, backlog: backlog, objs: objs}
	const slot = 0
	if err := g.adoptListener(slot, fd); err != nil { // closes fd on error
		g.abandon()
		return nil, nil, err
	}
	if err := objs.put(unsplit(slot)); err != nil {
		g.abandon()
		return nil, nil, fmt.Errorf("steer: serve slot %d of %s: %w", slot, addr, err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, objs.prog.FD()); err != nil {
		g.abandon()
		return nil, nil, fmt.Errorf("steer: attach a new program to %s (fd %d): %w", addr, fd, err)
	}
	if err := g.putReleased(slot, fd); err != nil {
		g.abandon()
		return nil, nil, fmt.Errorf("steer: %w; the group on %s is left with a program that lets the kernel's hash choose", err, addr)
	}
	l := g.slots[slot]
	g.serving = l
	return g, l, nil
}

// putReleased stores fd at slot of g's socket array, retrying while the
// kernel answers EBUSY (fd is still in the array of a program being
// freed), for at most releaseLimit.
func (g *Group) putReleased(slot uint32, fd int) error {
	deadline := time.Now().Add(releaseLimit)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for {
		err := g.objs.sockets.Put(slot, uint64(fd))
		if err == nil {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return fmt.Errorf("put fd %d of %s at slot %d: %w", fd, g.addr, slot, err)
		}
		<-tick.C
	}
}
