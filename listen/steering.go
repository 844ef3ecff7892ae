package listen

import (
	"fmt"

	"github.com/gunisup/supervisor/listen/steer"
)

// Steering is one listener whose generations may each have their own
// socket: BPF for TCP (*GenSockets), rename for a Unix path (*UnixGens).
// held is always the Socket the supervisor holds for the listener. Both
// implementations are safe for concurrent use.
type Steering interface {
	// Mode names the steering (steer.ModeBPF or steer.ModeRename).
	Mode() steer.Mode
	// Attach returns the descriptor generation gen gets and the Socket its
	// master's stop goes through: its own socket (BPF always, rename with
	// own set, for a reload's takeover) or the serving one.
	Attach(gen int, own bool, held *Socket) (int, *Socket, error)
	// Share makes a USR2 child (to) use its parent's (from) socket.
	Share(from, to int)
	// ServeGen sends new connections to gen's socket and returns the
	// Socket held for the listener from then on (held itself for BPF).
	ServeGen(gen int, held *Socket) (*Socket, error)
	// Serving reports whether gen's socket receives the new connections.
	Serving(gen int) bool
	// QueueDepth returns how many connections wait on gen's socket.
	QueueDepth(gen int) (int, error)
	// ServingFD is the descriptor whose queue snapshots report (-1: the
	// held socket's).
	ServingFD() int
	// Release records that gen exited.
	Release(gen int) error
	// Shut closes the supervisor's descriptors at shutdown, keeping the
	// names a stopping master still unlinks; Close frees everything.
	Shut() error
	Close() error
}

var (
	_ Steering = (*GenSockets)(nil)
	_ Steering = (*UnixGens)(nil)
)

// Mode is steer.ModeBPF.
func (s *GenSockets) Mode() steer.Mode { return steer.ModeBPF }

// Attach binds gen's own socket (see Add); its stop goes through held.
func (s *GenSockets) Attach(gen int, _ bool, held *Socket) (int, *Socket, error) {
	fd, err := s.Add(gen)
	return fd, held, err
}

// ServeGen switches new connections to gen's socket (see Serve) and
// returns held, which stays the listener's Socket.
func (s *GenSockets) ServeGen(gen int, held *Socket) (*Socket, error) {
	return held, s.Serve(gen)
}

// Shut is Close: the BPF group keeps no name for a stopping master.
func (s *GenSockets) Shut() error { return s.Close() }

// Mode is steer.ModeRename.
func (u *UnixGens) Mode() steer.Mode { return steer.ModeRename }

// Attach returns gen's socket's descriptor and the socket itself (see Add).
func (u *UnixGens) Attach(gen int, own bool, _ *Socket) (int, *Socket, error) {
	s, err := u.Add(gen, own)
	if err != nil {
		return -1, nil, err
	}
	fd := s.FD()
	if fd < 0 {
		return -1, nil, fmt.Errorf("listen %s: generation %d: the socket is closed", s.Spec.Raw, gen)
	}
	return fd, s, nil
}

// ServeGen is Serve: the path's Socket becomes gen's.
func (u *UnixGens) ServeGen(gen int, _ *Socket) (*Socket, error) { return u.Serve(gen) }

// ServingFD is -1: snapshots read the held socket, which is the serving one.
func (u *UnixGens) ServingFD() int { return -1 }

// SteeringHandover returns g's state for the next image of a self re-exec:
// BPF steering's or rename steering's, the other nil (both nil for nil g).
func SteeringHandover(g Steering) (*SteerHandover, *UnixSteerHandover) {
	switch g := g.(type) {
	case *GenSockets:
		return g.Handover(), nil
	case *UnixGens:
		return nil, g.Handover()
	}
	return nil, nil
}
