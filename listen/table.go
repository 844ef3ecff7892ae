package listen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gunisup/supervisor/listen/steer"
)

// Table is one app's held listeners and their steering, index-aligned in
// the app's listen order: it gives a generation its sockets, makes one
// serve, releases, quiesces, shuts and closes them. Each entry is a held
// Socket and its Steering (nil: every generation shares the socket). A
// rename steering's Serve makes a new Socket the one held for its path;
// the Table swaps it in under its lock. Safe for concurrent use.
type Table struct {
	mu      sync.Mutex
	entries []Entry
	// closed: Close ran; the entries stay for status.
	closed bool
}

// Entry is one listener of a Table: the Socket held for it and its
// steering (nil: shared).
type Entry struct {
	Socket   *Socket
	Steering Steering
}

// Mode names how connections reach the entry's generations.
func (e Entry) Mode() steer.Mode {
	if e.Steering != nil {
		return e.Steering.Mode()
	}
	return steer.ModeShared
}

// NewTable makes the table of socks with their steering gens (index-aligned;
// nil, a shorter slice or a nil entry: shared). The Table owns them from
// then on: Close closes them.
func NewTable(socks []*Socket, gens []Steering) *Table {
	t := &Table{entries: make([]Entry, len(socks))}
	for i, s := range socks {
		t.entries[i].Socket = s
		if i < len(gens) {
			t.entries[i].Steering = gens[i]
		}
	}
	return t
}

// Entries returns a copy of the table's entries (none for a nil Table).
func (t *Table) Entries() []Entry {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.entries)
}

// Sockets returns the held sockets in listen order (none for a nil Table).
func (t *Table) Sockets() []*Socket {
	es := t.Entries()
	out := make([]*Socket, len(es))
	for i, e := range es {
		out[i] = e.Socket
	}
	return out
}

// steered returns the non-nil steerings.
func (t *Table) steered() []Steering {
	var out []Steering
	for _, e := range t.Entries() {
		if e.Steering != nil {
			out = append(out, e.Steering)
		}
	}
	return out
}

// Open returns the descriptors generation gen gets, one per listener, and
// the sockets its master's stop goes through: own asks for sockets of its
// own where steering gives them (a reload's takeover). Every Unix socket's
// hidden name is re-created first where a master that exited removed it.
func (t *Table) Open(gen int, own bool) ([]int, []*Socket, error) {
	es := t.Entries()
	fds, named := make([]int, 0, len(es)), make([]*Socket, 0, len(es))
	for _, e := range es {
		if err := e.Socket.Relink(); err != nil {
			return nil, nil, err
		}
		if e.Steering != nil {
			fd, s, err := e.Steering.Attach(gen, own, e.Socket)
			if err != nil {
				return nil, nil, err
			}
			fds, named = append(fds, fd), append(named, s)
			continue
		}
		fd := e.Socket.FD()
		if fd < 0 {
			return nil, nil, fmt.Errorf("listener %s is closed", e.Socket.Spec.Raw)
		}
		fds, named = append(fds, fd), append(named, e.Socket)
	}
	return fds, named, nil
}

// Serve makes generation gen receive the new connections of every steered
// listener; a rename-steered listener's held Socket becomes gen's. Every
// method of a nil Table (an app without listeners) does nothing.
func (t *Table) Serve(gen int) error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	var errs []error
	for i, e := range t.entries {
		if e.Steering == nil {
			continue
		}
		now, err := e.Steering.ServeGen(gen, e.Socket)
		errs = append(errs, err)
		if now != nil {
			t.entries[i].Socket = now
		}
	}
	return errors.Join(errs...)
}

// Release records that generation gen exited (see Steering.Release).
func (t *Table) Release(gen int) error {
	var errs []error
	for _, g := range t.steered() {
		errs = append(errs, g.Release(gen))
	}
	return errors.Join(errs...)
}

// Share makes a USR2 child (to) use its parent's (from) steered sockets.
func (t *Table) Share(from, to int) {
	for _, g := range t.steered() {
		g.Share(from, to)
	}
}

// Quiesce returns once no connection waits on generation gen's own
// steered sockets, reading their queues every poll, or when ctx ends. A
// socket that cannot be read counts as empty.
func (t *Table) Quiesce(ctx context.Context, gen int, poll time.Duration) {
	for _, g := range t.steered() {
		if g.Serving(gen) {
			continue
		}
		for {
			n, err := g.QueueDepth(gen)
			if err != nil || n == 0 {
				break
			}
			tm := time.NewTimer(poll)
			select {
			case <-ctx.Done():
				tm.Stop()
				return
			case <-tm.C:
			}
		}
	}
}

// Relink re-creates the held names of the Unix sockets that a Gunicorn
// master removed on exit (see Socket.Relink).
func (t *Table) Relink() error {
	var errs []error
	for _, s := range t.Sockets() {
		errs = append(errs, s.Relink())
	}
	return errors.Join(errs...)
}

// ShutHeld closes the supervisor's copies of the held sockets, keeping
// their names (see Socket.Shut).
func (t *Table) ShutHeld() error {
	var errs []error
	for _, s := range t.Sockets() {
		errs = append(errs, s.Shut())
	}
	return errors.Join(errs...)
}

// ShutSteering closes the supervisor's copies of the generations' sockets
// (see Steering.Shut). Safe twice.
func (t *Table) ShutSteering() error {
	var errs []error
	for _, g := range t.steered() {
		errs = append(errs, g.Shut())
	}
	return errors.Join(errs...)
}

// CloseSteering frees every steering's sockets and BPF objects.
func (t *Table) CloseSteering() error {
	var errs []error
	for _, g := range t.steered() {
		errs = append(errs, g.Close())
	}
	return errors.Join(errs...)
}

// Close closes the steering, then the held sockets (nil Table: nothing).
// The entries stay, closed, for status; Closed reports it.
func (t *Table) Close() error {
	if t == nil {
		return nil
	}
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	return errors.Join(t.CloseSteering(), CloseAll(t.Sockets()))
}

// Closed reports whether Close ran (false for a nil Table).
func (t *Table) Closed() bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed
}

// ListenerHandover is one held listener as the next image of a self
// re-exec gets it: the held socket's descriptor, a Unix socket's inode and
// hidden name (see Socket.Held), and the listener's steering.
type ListenerHandover struct {
	Raw  string
	FD   int
	Ino  uint64
	Hold string
	SteeringState
}

// Handover returns every listener's hand-over record in listen order, read
// under the table's lock (no Serve swaps a socket meanwhile). A closed held
// socket is an error naming its listener.
func (t *Table) Handover() ([]ListenerHandover, error) {
	if t == nil {
		return nil, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]ListenerHandover, 0, len(t.entries))
	for _, e := range t.entries {
		fd := e.Socket.FD()
		if fd < 0 {
			return nil, fmt.Errorf("listener %s is closed", e.Socket.Spec.Raw)
		}
		ino, hold := e.Socket.Held()
		out = append(out, ListenerHandover{Raw: e.Socket.Spec.Raw, FD: fd, Ino: ino, Hold: hold, SteeringState: e.Handover()})
	}
	return out, nil
}
