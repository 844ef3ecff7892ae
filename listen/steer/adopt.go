package steer

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// ObjectFDs are the descriptors of a Group's BPF objects: what another
// process needs, with the listeners' sockets, to keep steering the group.
type ObjectFDs struct {
	Sockets int // the REUSEPORT_SOCKARRAY map
	Serving int // the one-entry array holding the serving slot
	Prog    int // the SK_REUSEPORT program
}

// ObjectFDs returns the descriptors of g's BPF objects. The Group owns
// them: they are valid until Close, and close-on-exec.
func (g *Group) ObjectFDs() ObjectFDs {
	return ObjectFDs{Sockets: g.objs.sockets.FD(), Serving: g.objs.serving.FD(), Prog: g.objs.prog.FD()}
}

// Listeners returns the group's listeners by slot (nil where a slot is free).
func (g *Group) Listeners() [MaxListeners]*Listener {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.slots
}

// AdoptGroup rebuilds a Group that another process created: objs are its
// BPF objects and socks maps a slot to the listening socket stored there.
// addr is the bound address (every later Add binds it). The serving
// listener is the one the serving map names (none if it names no adopted
// slot's listener, then the kernel's hash spreads connections). AdoptGroup
// owns every descriptor it is given: on error all are closed, and the
// kernel's maps are left as they were (the group stays steered by them).
func AdoptGroup(addr *net.TCPAddr, backlog int, objs ObjectFDs, socks map[int]int) (*Group, error) {
	ko, err := adoptObjects(objs)
	if err != nil {
		closeFDs(socks)
		return nil, err
	}
	g := &Group{addr: addr, backlog: backlog, objs: ko}
	pending := maps.Clone(socks)
	for _, slot := range slices.Sorted(maps.Keys(socks)) {
		fd := socks[slot]
		delete(pending, slot)
		if err := g.adoptListener(slot, fd); err != nil {
			closeFDs(pending)
			g.abandon()
			return nil, err
		}
	}
	var slot uint32
	if err := ko.serving.Lookup(uint32(0), &slot); err != nil {
		g.abandon()
		return nil, fmt.Errorf("steer: read serving slot of %s: %w", addr, err)
	}
	if slot < MaxListeners {
		g.serving = g.slots[slot]
	}
	return g, nil
}

// abandon closes g's descriptors without changing the kernel's maps, for
// an adoption that fails.
func (g *Group) abandon() {
	for i, l := range g.slots {
		if l != nil {
			_ = l.file.Close() // the adoption error is the one to report
			g.slots[i] = nil
		}
	}
	g.objs.close()
	g.closed = true
}

// adoptListener wraps fd, a socket listening on g.addr, as the listener at
// slot; on error fd is closed.
func (g *Group) adoptListener(slot, fd int) error {
	if slot < 0 || slot >= MaxListeners || g.slots[slot] != nil {
		_ = unix.Close(fd) // the slot error is the one to report
		return fmt.Errorf("steer: adopt fd %d of %s: slot %d is out of range or taken", fd, g.addr, slot)
	}
	bound, err := listeningAddr(fd)
	if err == nil && bound.Port != g.addr.Port {
		err = fmt.Errorf("bound to port %d, not %d", bound.Port, g.addr.Port)
	}
	if err != nil {
		_ = unix.Close(fd) // the check's error is the one to report
		return fmt.Errorf("steer: adopt fd %d at slot %d of %s: %w", fd, slot, g.addr, err)
	}
	g.slots[slot] = &Listener{
		group: g, slot: uint32(slot), addr: bound,
		file: os.NewFile(uintptr(fd), fmt.Sprintf("steer:%s#%d", bound, slot)),
	}
	return nil
}

// listeningAddr returns the address fd listens on; an error if fd is not a
// listening TCP socket.
func listeningAddr(fd int) (*net.TCPAddr, error) {
	acc, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil {
		return nil, fmt.Errorf("not a socket: %w", err)
	}
	if acc != 1 {
		return nil, errors.New("not listening")
	}
	return boundAddr(fd)
}

// adoptObjects wraps the descriptors of a Group's BPF objects, checking
// their types; on error every descriptor is closed.
func adoptObjects(fds ObjectFDs) (*kernelObjects, error) {
	// NewMapFromFD and NewProgramFromFD close the descriptor they fail on.
	var errs []error
	sockets, err := ebpf.NewMapFromFD(fds.Sockets)
	if err == nil && (sockets.Type() != ebpf.ReusePortSockArray || sockets.MaxEntries() != MaxListeners) {
		err = fmt.Errorf("map is %s of %d entries, want %s of %d", sockets.Type(), sockets.MaxEntries(), ebpf.ReusePortSockArray, MaxListeners)
	}
	errs = append(errs, wrapAdopt("socket array", fds.Sockets, err))
	serving, err := ebpf.NewMapFromFD(fds.Serving)
	if err == nil && (serving.Type() != ebpf.Array || serving.MaxEntries() != 1) {
		err = fmt.Errorf("map is %s of %d entries, want %s of 1", serving.Type(), serving.MaxEntries(), ebpf.Array)
	}
	errs = append(errs, wrapAdopt("serving-slot map", fds.Serving, err))
	prog, err := ebpf.NewProgramFromFD(fds.Prog)
	if err == nil && prog.Type() != ebpf.SkReuseport {
		err = fmt.Errorf("program is %s, want %s", prog.Type(), ebpf.SkReuseport)
	}
	errs = append(errs, wrapAdopt("program", fds.Prog, err))
	if err := errors.Join(errs...); err != nil {
		// Close is nil-safe; the adoption error is the one to report.
		_, _, _ = sockets.Close(), serving.Close(), prog.Close()
		return nil, err
	}
	return &kernelObjects{sockets: sockets, serving: serving, prog: prog}, nil
}

// wrapAdopt names what failed to adopt from which descriptor (nil if err is).
func wrapAdopt(what string, fd int, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("steer: adopt %s from fd %d: %w", what, fd, err)
}

// closeFDs closes the descriptors of socks.
func closeFDs(socks map[int]int) {
	for _, fd := range socks {
		_ = unix.Close(fd) // an adoption error is being reported
	}
}
