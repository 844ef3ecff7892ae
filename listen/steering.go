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
// returns held, which stays the listener's Socket. Connections the
// kernel's hash put on held while no socket served (nobody accepts from
// it) then move to gen's socket (see RequeueHeld).
func (s *GenSockets) ServeGen(gen int, held *Socket) (*Socket, error) {
	if err := s.Serve(gen); err != nil {
		return held, err
	}
	return held, s.RequeueHeld(held)
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

// SteeringState is a listener's steering as one image hands it to the
// next across a self re-exec: BPF steering (Steer) or rename steering
// (Rename), at most one set; neither for a shared listener.
type SteeringState struct {
	Steer  *SteerHandover
	Rename *UnixSteerHandover
}

// Handover returns the entry's steering state for the next image.
func (e Entry) Handover() SteeringState {
	switch g := e.Steering.(type) {
	case *GenSockets:
		return SteeringState{Steer: g.Handover()}
	case *UnixGens:
		return SteeringState{Rename: g.Handover()}
	}
	return SteeringState{}
}

// Kind names the handed-over steering ("BPF", "rename"; "" for none).
func (h SteeringState) Kind() string {
	switch {
	case h.Steer != nil:
		return "BPF"
	case h.Rename != nil:
		return "rename"
	}
	return ""
}

// Adopt adopts the steering h describes for held, the socket handed over
// with it (see AdoptSteered, AdoptUnixGens), and returns it with the state
// that names the descriptors staying open: the adopted duplicates', or
// none when nothing was adopted (err says why; nil Steering and nil err:
// nothing was handed over). The handed-over descriptors are closed either
// way; closeErr says if that failed.
func (h SteeringState) Adopt(held *Socket) (g Steering, kept SteeringState, err, closeErr error) {
	switch {
	case h.Steer != nil:
		kept.Rename = h.Rename // not adopted: only one steering is handed over
		var gs *GenSockets
		if gs, err = AdoptSteered(held.Spec, held, h.Steer); err == nil {
			g, kept.Steer = gs, gs.Handover()
		}
		closeErr = h.Steer.Close()
	case h.Rename != nil:
		var u *UnixGens
		if u, err = AdoptUnixGens(held, h.Rename); err == nil {
			g, kept.Rename = u, u.Handover()
		}
		closeErr = h.Rename.Close()
	}
	return g, kept, err, closeErr
}
