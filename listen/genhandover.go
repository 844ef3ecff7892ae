package listen

import (
	"errors"
	"fmt"
	"net"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// SteerHandover is what a BPF-steered listener passes to the next image
// across a self re-exec, beside its holder socket: the group's BPF objects
// and every live generation socket. Which socket serves is read from the
// serving map itself.
type SteerHandover struct {
	SocketsFD int                 `json:"sockets_fd"` // REUSEPORT_SOCKARRAY map
	ServingFD int                 `json:"serving_fd"` // serving-slot array map
	ProgFD    int                 `json:"prog_fd"`    // SK_REUSEPORT program
	Sockets   []GenSocketHandover `json:"sockets"`
}

// GenSocketHandover is one generation socket: its slot in the socket
// array and the generations it is recorded for.
type GenSocketHandover struct {
	FD   int   `json:"fd"`
	Slot int   `json:"slot"`
	Gens []int `json:"gens,omitempty"`
	// Done: every generation using it has exited; it is kept because it
	// serves, until Serve moves on.
	Done bool `json:"done,omitempty"`
}

// FDs lists every descriptor h names (nil h: none).
func (h *SteerHandover) FDs() []int {
	if h == nil {
		return nil
	}
	fds := []int{h.SocketsFD, h.ServingFD, h.ProgFD}
	for _, s := range h.Sockets {
		fds = append(fds, s.FD)
	}
	return fds
}

// Close closes every descriptor h names: a new image does so once it has
// adopted duplicates of them (AdoptSteered) or given up steering.
func (h *SteerHandover) Close() error { return closeHandedOver(h.FDs()) }

// closeHandedOver closes the handed-over descriptors fds and joins the
// errors, each naming its descriptor.
func closeHandedOver(fds []int) error {
	var errs []error
	for _, fd := range fds {
		if err := unix.Close(fd); err != nil {
			errs = append(errs, fmt.Errorf("close handed-over steering fd %d: %w", fd, err))
		}
	}
	return errors.Join(errs...)
}

// Handover describes s for the next image. The descriptors stay s's
// (close-on-exec; the re-exec clears that flag on the ones it passes).
func (s *GenSockets) Handover() *SteerHandover {
	s.mu.Lock()
	defer s.mu.Unlock()
	objs := s.group.ObjectFDs()
	h := &SteerHandover{SocketsFD: objs.Sockets, ServingFD: objs.Serving, ProgFD: objs.Prog}
	byListener := map[*steer.Listener][]int{}
	done := map[*steer.Listener]bool{}
	for gen, gl := range s.byGen {
		byListener[gl.l] = append(byListener[gl.l], gen)
		done[gl.l] = gl.done
	}
	for _, l := range s.group.Listeners() {
		if l == nil {
			continue
		}
		gens := byListener[l]
		slices.Sort(gens)
		h.Sockets = append(h.Sockets, GenSocketHandover{FD: int(l.File().Fd()), Slot: l.Slot(), Gens: gens, Done: done[l]})
	}
	return h
}

// AdoptSteered rebuilds the GenSockets of the TCP listener l that the
// previous image handed over as h, beside its adopted holder held. It works
// on close-on-exec duplicates of h's descriptors, which it owns on success
// and closes on error: h's own descriptors are the caller's either way.
func AdoptSteered(l config.Listener, held *Socket, h *SteerHandover) (*GenSockets, error) {
	if l.Network != config.NetTCP {
		return nil, fmt.Errorf("listen %s: steered hand-over of a non-TCP listener bound at %q", l.Raw, held.Bound)
	}
	addr, err := net.ResolveTCPAddr("tcp", held.Bound)
	if err != nil {
		return nil, fmt.Errorf("listen %s: steered hand-over: holder bound at %q: %w", l.Raw, held.Bound, err)
	}
	dups, err := dupAll(h.FDs())
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	objs := steer.ObjectFDs{Sockets: dups[0], Serving: dups[1], Prog: dups[2]}
	socks := map[int]int{}
	for i, gs := range h.Sockets {
		if _, dup := socks[gs.Slot]; dup {
			closeAll(dups)
			return nil, fmt.Errorf("listen %s: slot %d handed over twice", l.Raw, gs.Slot)
		}
		socks[gs.Slot] = dups[3+i]
	}
	group, err := steer.AdoptGroup(addr, backlogOf(l), objs, socks)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	s := &GenSockets{Spec: l, group: group, byGen: map[int]*genListener{}}
	slots := group.Listeners()
	for _, gs := range h.Sockets {
		gl := &genListener{l: slots[gs.Slot], gens: map[int]bool{}, done: gs.Done}
		for _, gen := range gs.Gens {
			if !gs.Done {
				gl.gens[gen] = true
			}
			s.byGen[gen] = gl
		}
		if gl.l == group.Serving() {
			s.serving = gl
		}
	}
	s.adoptSplit()
	return s, nil
}

// adoptSplit records the split the adopted group's steering map holds.
// Its generations are the newest recorded for each socket (a USR2 child
// shares its parent's), -1 for a socket recorded for none.
func (s *GenSockets) adoptSplit() {
	canary, share := s.group.Canary()
	if canary == nil {
		return
	}
	sg, cg := -1, -1
	for gen, gl := range s.byGen {
		switch {
		case gl == s.serving:
			sg = max(sg, gen)
		case gl.l == canary:
			cg = max(cg, gen)
			s.canary = gl
		}
	}
	if s.canary == nil { // recorded for no generation: steered all the same
		s.canary = &genListener{l: canary, gens: map[int]bool{}}
	}
	s.split = SplitState{Serving: sg, Canary: cg, Share: share}
}

// dupAll returns close-on-exec duplicates of fds, in order; on error none
// is left open.
func dupAll(fds []int) ([]int, error) {
	dups := make([]int, 0, len(fds))
	for _, fd := range fds {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			closeAll(dups)
			return nil, fmt.Errorf("duplicate handed-over fd %d: %w", fd, err)
		}
		dups = append(dups, d)
	}
	return dups, nil
}

// closeAll closes fds, on an error path whose error is the one to report.
func closeAll(fds []int) {
	for _, fd := range fds {
		_ = unix.Close(fd) // see above
	}
}

// RecoverSteered rebuilds the BPF steering of the TCP listener l after
// the supervisor that made it died: ids are its BPF objects (see
// GenSockets.ObjectIDs; steer.RecoverGroup makes new ones where the
// kernel refuses to open them by id), taken a socket its serving generation still holds
// (copied from that process). A duplicate of taken's descriptor becomes
// generation gen's socket, serving, and a new holder socket is returned as
// the Socket to hold for l: the kernel sends connections to the same socket
// throughout. taken stays the caller's (close it on success); on error
// nothing of the steering is left open.
func RecoverSteered(l config.Listener, taken *Socket, ids steer.ObjectIDs, gen int) (*GenSockets, *Socket, error) {
	if l.Network != config.NetTCP {
		return nil, nil, fmt.Errorf("listen %s: only TCP listeners are steered by BPF", l.Raw)
	}
	addr, err := net.ResolveTCPAddr("tcp", taken.Bound)
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: taken socket bound at %q: %w", l.Raw, taken.Bound, err)
	}
	fd := taken.FD()
	if fd < 0 {
		return nil, nil, fmt.Errorf("listen %s: the taken socket is closed", l.Raw)
	}
	dups, err := dupAll([]int{fd})
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	group, serving, err := steer.RecoverGroup(addr, backlogOf(l), ids, dups[0])
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	hfd, err := group.Hold()
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("listen %s: %w", l.Raw, err), group.Close())
	}
	held, err := AdoptFD(l, hfd, false)
	if err != nil {
		return nil, nil, errors.Join(err, group.Close())
	}
	gl := &genListener{l: serving, gens: map[int]bool{gen: true}}
	s := &GenSockets{Spec: l, group: group, byGen: map[int]*genListener{gen: gl}, serving: gl}
	return s, held, nil
}

// ObjectIDs returns the ids of s's BPF objects, for a successor's
// RecoverSteered.
func (s *GenSockets) ObjectIDs() (steer.ObjectIDs, error) { return s.group.ObjectIDs() }
