package listen

import (
	"errors"
	"fmt"
	"slices"
)

// UnixSteerHandover is what a Unix listener steered by rename (UnixGens)
// passes to the next image across a self re-exec, beside its held socket.
// The held socket (upgrade.SocketHandover's FD, Ino and Hold) is the
// serving one, the socket the configured path names; this lists the
// generations using it and every other generation socket.
type UnixSteerHandover struct {
	// ServingGens are the generations using the serving socket. None: every
	// generation that used it has exited (it is done), and it is kept for
	// the connections queued on it until the next generation takes it.
	ServingGens []int `json:"serving_gens,omitempty"`
	// Sockets are the other generation sockets: each is bound at its own
	// hidden name, which the configured path does not name, and used by
	// running generations (a socket no generation uses is closed, so none
	// of these is done).
	Sockets []UnixSocketHandover `json:"sockets,omitempty"`
}

// UnixSocketHandover is one generation socket that does not serve.
type UnixSocketHandover struct {
	FD int `json:"fd"`
	// Ino and Hold are the inode and hidden name of the socket's file (see
	// Socket.Held).
	Ino  uint64 `json:"ino"`
	Hold string `json:"hold"`
	Gens []int  `json:"gens"`
}

// FDs lists the descriptors h names beside the held socket's (nil h: none).
func (h *UnixSteerHandover) FDs() []int {
	if h == nil {
		return nil
	}
	fds := make([]int, 0, len(h.Sockets))
	for _, s := range h.Sockets {
		fds = append(fds, s.FD)
	}
	return fds
}

// Close closes the descriptors h names (not the held socket's): a new
// image does so once it has adopted duplicates of them (AdoptUnixGens) or
// given up steering.
func (h *UnixSteerHandover) Close() error { return closeHandedOver(h.FDs()) }

// Handover describes u for the next image. The descriptors stay u's
// (close-on-exec; the re-exec clears that flag on the ones it passes). A
// socket whose descriptor is already closed (after Shut) is left out.
func (u *UnixGens) Handover() *UnixSteerHandover {
	u.mu.Lock()
	defer u.mu.Unlock()
	h := &UnixSteerHandover{ServingGens: sortedGens(u.serving.gens)}
	for _, ug := range u.sockets()[1:] {
		fd := ug.s.FD()
		if fd < 0 {
			continue
		}
		ino, hold := ug.s.Held()
		h.Sockets = append(h.Sockets, UnixSocketHandover{FD: fd, Ino: ino, Hold: hold, Gens: sortedGens(ug.gens)})
	}
	return h
}

// sortedGens returns the generations of gens in order.
func sortedGens(gens map[int]bool) []int {
	out := make([]int, 0, len(gens))
	for gen := range gens {
		out = append(out, gen)
	}
	slices.Sort(out)
	return out
}

// AdoptUnixGens rebuilds the UnixGens of the Unix listener whose serving
// socket the previous image handed over as held (adopted with AdoptHeld)
// and whose other generation sockets it described as h. It works on
// close-on-exec duplicates of h's descriptors, which it owns on success and
// closes on error: h's own descriptors are the caller's either way, and
// held stays open.
func AdoptUnixGens(held *Socket, h *UnixSteerHandover) (*UnixGens, error) {
	u, err := SteerUnix(held)
	if err != nil {
		return nil, err
	}
	for _, gen := range h.ServingGens {
		u.serving.gens[gen] = true
		u.byGen[gen] = u.serving
	}
	dups, err := dupAll(h.FDs())
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", u.Spec.Raw, err)
	}
	for i, hs := range h.Sockets {
		ug, err := u.adoptGen(dups[i], hs)
		if err != nil {
			closeAll(dups[i:])
			return nil, errors.Join(fmt.Errorf("listen %s: %w", u.Spec.Raw, err), u.closeAdopted())
		}
		for gen := range ug.gens {
			u.byGen[gen] = ug
		}
	}
	return u, nil
}

// adoptGen wraps fd, the duplicate of the handed-over socket hs, as a
// generation socket that does not serve. It refuses a socket that is not
// bound at hs.Hold, has no generation, or names one already adopted; fd
// is the caller's to close then.
func (u *UnixGens) adoptGen(fd int, hs UnixSocketHandover) (*unixGen, error) {
	if hs.Hold == "" || len(hs.Gens) == 0 {
		return nil, fmt.Errorf("generation socket fd %d: no hidden name or no generation", hs.FD)
	}
	for _, gen := range hs.Gens {
		if u.byGen[gen] != nil {
			return nil, fmt.Errorf("generation %d handed over on two sockets", gen)
		}
	}
	bound, err := sockName(fd)
	if err != nil || bound != hs.Hold {
		return nil, fmt.Errorf("generation socket fd %d is bound at %q, not %s (%v)", hs.FD, bound, hs.Hold, err)
	}
	s, err := AdoptHeld(u.Spec, fd, hs.Ino, hs.Hold)
	if err != nil {
		return nil, err
	}
	s.setPublished(false)
	ug := &unixGen{s: s, gens: map[int]bool{}}
	for _, gen := range hs.Gens {
		ug.gens[gen] = true
	}
	return ug, nil
}

// closeAdopted closes the descriptors of the generation sockets adopted so
// far, keeping their names (their generations still use them) and the held
// socket: the error path of AdoptUnixGens.
func (u *UnixGens) closeAdopted() error {
	var errs []error
	for _, ug := range u.sockets()[1:] {
		errs = append(errs, ug.s.Shut())
	}
	return errors.Join(errs...)
}
