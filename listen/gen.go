package listen

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// GenSockets gives each generation of an app its own listening socket on
// one TCP address, steered by BPF (see package steer): Add binds a
// generation's socket, Serve switches new connections to it with one map
// update, Release closes it once no generation uses it, and the connections
// still queued on it move to the serving socket instead of being reset.
// A holder socket (HeldSocket) keeps the address bound for the supervisor's
// snapshots and a self-upgrade; nobody accepts from it, so a socket always
// serves: from BindSteered on a standby socket, which the first
// generation takes, then the last served one until Serve moves on. All
// methods are safe for concurrent use.
type GenSockets struct {
	Spec  config.Listener
	group *steer.Group

	mu      sync.Mutex
	byGen   map[int]*genListener
	serving *genListener
	// canary receives a share of the new connections (see Split); nil
	// without a split. split records the generations and share.
	canary *genListener
	split  SplitState
}

// genListener is one socket and the generations that use it (a USR2 child
// inherits its parent's).
type genListener struct {
	l    *steer.Listener
	gens map[int]bool
	// done: every generation using it has exited.
	done bool
}

// BindSteered prepares steering for the TCP listener l: a BPF-steered group
// on its address and the holder socket, returned as the Socket the
// supervisor holds for l (its Bound is the bound address). It fails, with
// the reason, where steer.Available would.
func BindSteered(l config.Listener) (*GenSockets, *Socket, error) {
	if l.Network != config.NetTCP {
		return nil, nil, fmt.Errorf("listen %s: only TCP listeners are steered by BPF", l.Raw)
	}
	group, err := steer.NewGroup(l.Address, backlogOf(l))
	if err != nil {
		return nil, nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	fd, err := group.Hold()
	if err != nil {
		return nil, nil, errors.Join(fmt.Errorf("listen %s: %w", l.Raw, err), group.Close())
	}
	held, err := AdoptFD(l, fd, false)
	if err != nil {
		return nil, nil, errors.Join(err, group.Close())
	}
	s := &GenSockets{Spec: l, group: group, byGen: map[int]*genListener{}}
	if err := s.addStandby(); err != nil {
		return nil, nil, errors.Join(err, held.Close(), group.Close())
	}
	return s, held, nil
}

// addStandby binds the socket that serves before any generation exists
// and makes it the serving one: the first generation's Add takes it, with
// the connections queued there meanwhile. Without it the kernel's hash
// would put them on the holder, whose queue nobody accepts from.
func (s *GenSockets) addStandby() error {
	l, err := s.group.Add()
	if err != nil {
		return fmt.Errorf("listen %s: standby socket: %w", s.Spec.Raw, err)
	}
	if err := s.group.Serve(l); err != nil {
		return fmt.Errorf("listen %s: serve the standby socket: %w", s.Spec.Raw, err)
	}
	s.serving = &genListener{l: l, gens: map[int]bool{}}
	return nil
}

// standbyLocked reports whether the serving socket is a standby: one no
// generation has used yet (addStandby's, or one adopted as such); s.mu is
// held.
func (s *GenSockets) standbyLocked() bool {
	return s.serving != nil && len(s.serving.gens) == 0 && !s.serving.done
}

// backlogOf is the listen backlog of l's sockets (2048 unless set).
func backlogOf(l config.Listener) int {
	if l.Backlog <= 0 {
		return 2048
	}
	return l.Backlog
}

// Add binds generation gen's own socket and returns its descriptor, which
// the GenSockets owns (pass it to the child; do not close it). It receives
// no new connection until Serve(gen), except the standby socket: the first
// generation takes the socket that serves while none exists, and the
// connections queued on it.
func (s *GenSockets) Add(gen int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gl := s.byGen[gen]; gl != nil {
		return int(gl.l.File().Fd()), nil
	}
	if s.standbyLocked() {
		s.serving.gens[gen] = true
		s.byGen[gen] = s.serving
		return int(s.serving.l.File().Fd()), nil
	}
	l, err := s.group.Add()
	if err != nil {
		return -1, fmt.Errorf("listen %s: generation %d: %w", s.Spec.Raw, gen, err)
	}
	s.byGen[gen] = &genListener{l: l, gens: map[int]bool{gen: true}}
	// The socket was created blocking and stays so for us; File().Fd()
	// therefore changes no flag that the child's copy shares.
	return int(l.File().Fd()), nil
}

// Share makes generation to use from's socket (a USR2 child inherits its
// parent's listeners): it is released only when both have exited.
func (s *GenSockets) Share(from, to int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if gl := s.byGen[from]; gl != nil {
		gl.gens[to] = true
		s.byGen[to] = gl
	}
}

// Serve sends every new connection to gen's socket, ending any split. A
// generation without a socket of its own (one that shares its parent's)
// changes nothing. Sockets whose generations have all exited are then
// closed: their queued connections move to gen's socket.
func (s *GenSockets) Serve(gen int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	gl := s.byGen[gen]
	if gl == nil || (gl == s.serving && s.canary == nil) {
		return nil
	}
	if err := s.group.Serve(gl.l); err != nil {
		return fmt.Errorf("listen %s: serve generation %d: %w", s.Spec.Raw, gen, err)
	}
	s.serving, s.canary, s.split = gl, nil, SplitState{}
	return s.removeDoneLocked()
}

// removeDoneLocked closes the sockets whose generations have all exited,
// except the serving and canary ones; s.mu is held.
func (s *GenSockets) removeDoneLocked() error {
	var errs []error
	for _, other := range s.byGen {
		if other.done && other != s.serving && other != s.canary {
			errs = append(errs, s.removeLocked(other))
		}
	}
	return errors.Join(errs...)
}

// Serving reports whether gen's socket receives the new connections.
func (s *GenSockets) Serving(gen int) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.serving != nil && s.byGen[gen] == s.serving
}

// QueueDepth returns how many connections wait on gen's socket (0 without one).
func (s *GenSockets) QueueDepth(gen int) (int, error) {
	s.mu.Lock()
	gl := s.byGen[gen]
	s.mu.Unlock()
	if gl == nil {
		return 0, nil
	}
	return gl.l.QueueDepth()
}

// ServingFD returns the serving socket's descriptor, or -1 (for snapshots).
func (s *GenSockets) ServingFD() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.serving == nil {
		return -1
	}
	return int(s.serving.l.File().Fd())
}

// Release records that gen exited. Its socket closes once every generation
// using it has exited, unless it serves: a serving socket keeps its queue
// until Serve switches to another one, which then receives that queue.
func (s *GenSockets) Release(gen int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	gl := s.byGen[gen]
	if gl == nil {
		return nil
	}
	delete(gl.gens, gen)
	if len(gl.gens) > 0 {
		delete(s.byGen, gen)
		return nil
	}
	gl.done = true
	if gl == s.serving {
		return nil // kept until Serve moves on
	}
	return s.removeLocked(gl)
}

// removeLocked closes gl's socket (removing the canary's ends the split);
// s.mu is held.
func (s *GenSockets) removeLocked(gl *genListener) error {
	if gl == s.canary {
		s.canary, s.split = nil, SplitState{}
	}
	for k, v := range s.byGen {
		if v == gl {
			delete(s.byGen, k)
		}
	}
	if err := s.group.Remove(gl.l); err != nil {
		return fmt.Errorf("listen %s: %w", s.Spec.Raw, err)
	}
	return nil
}

// Close closes every generation's socket and frees the BPF objects; the
// holder Socket is closed separately. Safe twice.
func (s *GenSockets) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.byGen = map[int]*genListener{}
	s.serving, s.canary, s.split = nil, nil, SplitState{}
	return s.group.Close()
}

// RequeueHeld moves the connections waiting on held, the holder socket
// BindSteered returned, to the serving socket (see steer.Group.Requeue):
// while no generation's socket serves (from the bind to the first Serve),
// the kernel's hash may put a connection on the holder, whose queue nobody
// accepts from. It does nothing when held is closed, has no connection
// waiting, or no socket serves.
func (s *GenSockets) RequeueHeld(held *Socket) error {
	fd := held.FD()
	if fd < 0 {
		return nil
	}
	if n, err := steer.HolderQueue(fd); err != nil || n == 0 {
		return err
	}
	if err := s.group.Requeue(fd); err != nil && !errors.Is(err, steer.ErrNoServing) {
		return fmt.Errorf("listen %s: %w", s.Spec.Raw, err)
	}
	return nil
}
