package listen

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sync"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/sockdiag"
	"github.com/gunisup/supervisor/listen/steer"
)

// UnixGens steers the generations of an app between Unix sockets on one
// configured path: a reload's new generation gets its own socket at a hidden
// name beside the path (".web.sock.gN-XXXX"), and Serve renames a link to
// it over the configured path (steer.SwitchUnix). connect(2) resolves the
// path when it is called, so new clients reach the serving socket while
// connections already queued on the previous one stay there for the
// previous generation to accept. Every other generation (a start, a
// restart, one that follows a generation that has exited) shares the
// serving socket, whose queue it inherits, as with one shared socket. The
// first serving socket is the one Bind made (its hidden name ".held").
// Across a self-upgrade, Handover describes it and AdoptUnixGens rebuilds
// it in the next image. All methods are safe for concurrent use.
type UnixGens struct {
	Spec    config.Listener
	backlog int

	mu      sync.Mutex
	byGen   map[int]*unixGen
	serving *unixGen
	// closed: Close ran; Add refuses.
	closed bool
}

// unixGen is one socket and the generations that use it.
type unixGen struct {
	s    *Socket
	gens map[int]bool
}

// SteerUnix steers the Unix listener held, which Bind returned (its
// configured path names it): it serves until the first switch.
func SteerUnix(held *Socket) (*UnixGens, error) {
	if held.Spec.Network != config.NetUnix || held.hold == "" {
		return nil, fmt.Errorf("listen %s: only a Unix socket bound by the supervisor is steered by rename", held.Spec.Raw)
	}
	backlog := backlogOf(held.Spec)
	first := &unixGen{s: held, gens: map[int]bool{}}
	return &UnixGens{Spec: held.Spec, backlog: backlog, byGen: map[int]*unixGen{}, serving: first}, nil
}

// Add returns generation gen's socket (owned by the UnixGens: pass its FD
// to the child, do not close it). With own set and a serving socket that a
// running generation uses, gen gets a new socket that receives no
// connection until Serve(gen); otherwise gen shares the serving socket,
// whose hidden name is re-created first if a master that exited removed it.
func (u *UnixGens) Add(gen int, own bool) (*Socket, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.closed {
		return nil, fmt.Errorf("listen %s: generation %d: the listener is closed", u.Spec.Raw, gen)
	}
	if ug := u.byGen[gen]; ug != nil {
		return ug.s, nil
	}
	if !own || len(u.serving.gens) == 0 {
		if err := u.serving.s.Relink(); err != nil {
			return nil, err
		}
		u.serving.gens[gen] = true
		u.byGen[gen] = u.serving
		return u.serving.s, nil
	}
	pub := u.Spec.Address
	hidden := filepath.Join(filepath.Dir(pub), fmt.Sprintf(".%s.g%d-%04x", filepath.Base(pub), gen, rand.Uint32N(1<<16)))
	s, err := bindUnixAt(u.Spec, hidden, u.backlog, false)
	if err != nil {
		return nil, fmt.Errorf("generation %d: %w", gen, err)
	}
	u.byGen[gen] = &unixGen{s: s, gens: map[int]bool{gen: true}}
	return s, nil
}

// Share makes generation to use from's socket (a USR2 child inherits its
// parent's listeners).
func (u *UnixGens) Share(from, to int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if ug := u.byGen[from]; ug != nil {
		ug.gens[to] = true
		u.byGen[to] = ug
	}
}

// Serve makes the configured path name gen's socket (one rename) and
// returns it: the Socket now held for the path. A generation that shares
// the serving socket, or has none, changes nothing. Sockets no generation
// uses any more are closed then.
func (u *UnixGens) Serve(gen int) (*Socket, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	ug := u.byGen[gen]
	if ug == nil || ug == u.serving {
		return u.serving.s, nil
	}
	if err := steer.SwitchUnix(ug.s.hold, u.Spec.Address); err != nil {
		return u.serving.s, fmt.Errorf("listen %s: serve generation %d: %w", u.Spec.Raw, gen, err)
	}
	prev := u.serving
	u.serving = ug
	ug.s.setPublished(true)
	prev.s.setPublished(false)
	if len(prev.gens) == 0 {
		return ug.s, u.removeLocked(prev)
	}
	return ug.s, nil
}

// Serving reports whether gen's socket is the one the configured path names.
func (u *UnixGens) Serving(gen int) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.byGen[gen] == u.serving
}

// Current returns the socket the configured path names.
func (u *UnixGens) Current() *Socket {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.serving.s
}

// QueueDepth returns how many connections wait on gen's socket (0 without
// one, or once the supervisor's descriptor is closed).
func (u *UnixGens) QueueDepth(gen int) (int, error) {
	u.mu.Lock()
	ug := u.byGen[gen]
	u.mu.Unlock()
	if ug == nil {
		return 0, nil
	}
	fd := ug.s.FD()
	if fd < 0 {
		return 0, nil
	}
	ino, err := sockdiag.SocketInode(fd)
	if err != nil {
		return 0, fmt.Errorf("listen %s: queue of generation %d: %w", u.Spec.Raw, gen, err)
	}
	n, err := sockdiag.UnixQueueLength(ino)
	if err != nil {
		return 0, fmt.Errorf("listen %s: queue of generation %d: %w", u.Spec.Raw, gen, err)
	}
	return n, nil
}

// Release records that gen exited. Its socket closes (and its hidden name
// goes) once no generation uses it, unless the configured path names it:
// the serving socket keeps its queue for the next generation.
func (u *UnixGens) Release(gen int) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	ug := u.byGen[gen]
	if ug == nil {
		return nil
	}
	delete(ug.gens, gen)
	delete(u.byGen, gen)
	if len(ug.gens) > 0 || ug == u.serving {
		return nil
	}
	return u.removeLocked(ug)
}

// removeLocked closes ug's socket; u.mu is held.
func (u *UnixGens) removeLocked(ug *unixGen) error {
	for k, v := range u.byGen {
		if v == ug {
			delete(u.byGen, k)
		}
	}
	return ug.s.Close()
}

// Shut closes the supervisor's descriptors of every generation's socket
// and keeps their names (see Socket.Shut): at shutdown, once the
// generations have closed theirs, clients are refused. Safe twice.
func (u *UnixGens) Shut() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var errs []error
	for _, ug := range u.sockets() {
		errs = append(errs, ug.s.Shut())
	}
	return errors.Join(errs...)
}

// Close closes every generation's socket and removes their names where
// they still name them, the serving one included. Safe twice.
func (u *UnixGens) Close() error {
	u.mu.Lock()
	defer u.mu.Unlock()
	var errs []error
	for _, ug := range u.sockets() {
		errs = append(errs, ug.s.Close())
	}
	u.byGen = map[int]*unixGen{}
	u.closed = true
	return errors.Join(errs...)
}

// sockets lists each socket once, the serving one included; u.mu is held.
func (u *UnixGens) sockets() []*unixGen {
	out := []*unixGen{u.serving}
	seen := map[*unixGen]bool{u.serving: true}
	for _, ug := range u.byGen {
		if !seen[ug] {
			seen[ug] = true
			out = append(out, ug)
		}
	}
	return out
}

// setPublished records whether the configured path names s (see Relink).
func (s *Socket) setPublished(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unpublished = !on
}
