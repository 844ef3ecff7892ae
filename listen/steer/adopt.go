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
	Serving int // the one-entry steering map (serving slot, canary slot, threshold)
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
// listener is the one the steering map names (none if it names no adopted
// slot's listener, then the kernel's hash spreads connections), and so is
// the canary of a split (see Split). AdoptGroup
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
	v, err := ko.lookup()
	if err != nil {
		g.abandon()
		return nil, fmt.Errorf("steer: read steering map of %s: %w", addr, err)
	}
	g.serving, g.canary = g.listenerAt(v.Serving), g.listenerAt(v.Canary)
	if g.canary != nil {
		g.threshold = v.Threshold
	}
	return g, nil
}

// listenerAt returns the listener at slot, nil for noSlot or a free slot.
func (g *Group) listenerAt(slot uint32) *Listener {
	if slot >= MaxListeners {
		return nil
	}
	return g.slots[slot]
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
	if err == nil {
		err = checkSteeringMap(serving)
	}
	errs = append(errs, wrapAdopt("steering map", fds.Serving, err))
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
	return &kernelObjects{sockets: sockets, serving: serving, prog: prog, legacy: serving.ValueSize() == legacyValueSize}, nil
}

// checkSteeringMap returns an error unless m is a Group's steering map: an
// array of one value of valueSize bytes, or of legacyValueSize bytes (the
// serving slot alone) from an earlier image.
func checkSteeringMap(m *ebpf.Map) error {
	if m.Type() != ebpf.Array || m.MaxEntries() != 1 || (m.ValueSize() != valueSize && m.ValueSize() != legacyValueSize) {
		return fmt.Errorf("map is %s of %d entries of %d bytes, want %s of 1 entry of %d (or %d) bytes",
			m.Type(), m.MaxEntries(), m.ValueSize(), ebpf.Array, valueSize, legacyValueSize)
	}
	return nil
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

// ObjectIDs are the kernel's ids of a Group's BPF objects. After the
// Group's owner died, a process with CAP_SYS_ADMIN finds the objects by id
// (RecoverGroup) as long as a socket of the reuseport group keeps the
// program attached; without it RecoverGroup makes new ones.
type ObjectIDs struct {
	Sockets uint32 `json:"sockets"`
	Serving uint32 `json:"serving"`
	Prog    uint32 `json:"prog"`
}

// ObjectIDs returns the ids of g's BPF objects.
func (g *Group) ObjectIDs() (ObjectIDs, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return ObjectIDs{}, ErrClosed
	}
	var ids ObjectIDs
	for _, m := range []struct {
		m  *ebpf.Map
		id *uint32
	}{{g.objs.sockets, &ids.Sockets}, {g.objs.serving, &ids.Serving}} {
		info, err := m.m.Info()
		if err != nil {
			return ObjectIDs{}, fmt.Errorf("steer: map info of %s: %w", g.addr, err)
		}
		id, ok := info.ID()
		if !ok {
			return ObjectIDs{}, fmt.Errorf("steer: map ids of %s: not available from this kernel", g.addr)
		}
		*m.id = uint32(id)
	}
	info, err := g.objs.prog.Info()
	if err != nil {
		return ObjectIDs{}, fmt.Errorf("steer: program info of %s: %w", g.addr, err)
	}
	id, ok := info.ID()
	if !ok {
		return ObjectIDs{}, fmt.Errorf("steer: program id of %s: not available from this kernel", g.addr)
	}
	ids.Prog = uint32(id)
	return ids, nil
}

// RecoverGroup rebuilds the Group whose BPF objects have ids, after the
// process that made it died, around fd: a socket listening on addr that a
// surviving process holds, stored in the group's socket array (the slot
// whose socket cookie is fd's). fd becomes the serving listener, and any
// split ends (one map update when the steering map says otherwise). The other slots count as free: an
// Add may replace a socket a survivor still holds there. Opening objects
// by id needs CAP_SYS_ADMIN; when the kernel refuses it (EPERM), the group
// gets new objects instead (see rebuildGroup), which CAP_BPF allows.
// RecoverGroup owns fd: on error it is closed and, unless the error says
// the group was left unsteered, the kernel's maps are as they were.
func RecoverGroup(addr *net.TCPAddr, backlog int, ids ObjectIDs, fd int) (*Group, *Listener, error) {
	objs, err := objectsByID(ids)
	if errors.Is(err, unix.EPERM) {
		return rebuildGroup(addr, backlog, fd)
	}
	if err != nil {
		_ = unix.Close(fd) // the adoption error is the one to report
		return nil, nil, err
	}
	g := &Group{addr: addr, backlog: backlog, objs: objs}
	slot, err := g.slotOf(fd)
	if err == nil {
		err = g.adoptListener(slot, fd) // closes fd on error
	} else {
		_ = unix.Close(fd) // the lookup error is the one to report
	}
	if err != nil {
		g.abandon()
		return nil, nil, err
	}
	l := g.slots[slot]
	if v, err := objs.lookup(); err != nil || v != unsplit(uint32(slot)) {
		if err := objs.put(unsplit(uint32(slot))); err != nil {
			g.abandon()
			return nil, nil, fmt.Errorf("steer: serve slot %d of %s: %w", slot, addr, err)
		}
	}
	g.serving = l
	return g, l, nil
}

// slotOf returns the slot of g's socket array that holds fd's socket.
func (g *Group) slotOf(fd int) (int, error) {
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_COOKIE)
	if err != nil {
		return -1, fmt.Errorf("steer: socket cookie of fd %d: %w", fd, err)
	}
	for slot := range MaxListeners {
		var c uint64
		if err := g.objs.sockets.Lookup(uint32(slot), &c); err == nil && c == cookie {
			return slot, nil
		}
	}
	return -1, fmt.Errorf("steer: fd %d (socket cookie %d) is in no slot of the socket array of %s", fd, cookie, g.addr)
}

// objectsByID opens the BPF objects of ids, checking their types.
func objectsByID(ids ObjectIDs) (*kernelObjects, error) {
	sockets, serr := ebpf.NewMapFromID(ebpf.MapID(ids.Sockets))
	serving, verr := ebpf.NewMapFromID(ebpf.MapID(ids.Serving))
	prog, perr := ebpf.NewProgramFromID(ebpf.ProgramID(ids.Prog))
	err := errors.Join(wrapID("socket array", ids.Sockets, serr), wrapID("steering map", ids.Serving, verr), wrapID("program", ids.Prog, perr))
	if err == nil {
		err = checkObjects(sockets, serving, prog)
	}
	if err != nil {
		// Close is nil-safe; the adoption error is the one to report.
		_, _, _ = sockets.Close(), serving.Close(), prog.Close()
		return nil, err
	}
	return &kernelObjects{sockets: sockets, serving: serving, prog: prog, legacy: serving.ValueSize() == legacyValueSize}, nil
}

// checkObjects returns an error unless the objects are a Group's kinds.
func checkObjects(sockets, serving *ebpf.Map, prog *ebpf.Program) error {
	var errs []error
	if sockets.Type() != ebpf.ReusePortSockArray || sockets.MaxEntries() != MaxListeners {
		errs = append(errs, fmt.Errorf("steer: socket array is %s of %d entries, want %s of %d", sockets.Type(), sockets.MaxEntries(), ebpf.ReusePortSockArray, MaxListeners))
	}
	if err := checkSteeringMap(serving); err != nil {
		errs = append(errs, fmt.Errorf("steer: steering map: %w", err))
	}
	if prog.Type() != ebpf.SkReuseport {
		errs = append(errs, fmt.Errorf("steer: program is %s, want %s", prog.Type(), ebpf.SkReuseport))
	}
	return errors.Join(errs...)
}

// wrapID names what failed to open by which id (nil if err is).
func wrapID(what string, id uint32, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("steer: open %s by id %d: %w", what, id, err)
}
