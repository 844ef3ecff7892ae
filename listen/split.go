package listen

import (
	"errors"
	"fmt"

	"github.com/gunisup/supervisor/listen/steer"
)

// SplitState is a weighted split of a listener's new connections between
// two generations (see GenSockets.Split).
type SplitState struct {
	Serving int     // the generation receiving the rest
	Canary  int     // the generation receiving Share
	Share   float64 // of the new connections, 0 to 1
}

// ErrCannotSplit is matched (errors.Is) by every SplitError.
var ErrCannotSplit = errors.New("cannot split new connections by weight")

// SplitError says why a Table cannot split its new connections by weight:
// Listener (its configured form, e.g. "unix:/run/app.sock") is steered by
// Mode, which cannot split; an empty Listener means the app has none.
type SplitError struct {
	Listener string
	Mode     steer.Mode
}

// splitNeeds is what a weighted split requires, for SplitError's message.
const splitNeeds = "--canary needs TCP listeners with BPF steering"

func (e *SplitError) Error() string {
	switch {
	case e.Listener == "":
		return "the app has no listeners to split by weight; " + splitNeeds
	case e.Mode == steer.ModeRename:
		return fmt.Sprintf("%s: rename steering cannot split by weight; %s", e.Listener, splitNeeds)
	case e.Mode == steer.ModeShared:
		return fmt.Sprintf("%s: a shared socket (no BPF steering) cannot split by weight; %s", e.Listener, splitNeeds)
	}
	return fmt.Sprintf("%s: %s steering cannot split by weight; %s", e.Listener, e.Mode, splitNeeds)
}

// Is makes errors.Is(err, ErrCannotSplit) true.
func (e *SplitError) Is(target error) bool { return target == ErrCannotSplit }

// splitter is a steering that can split by weight (*GenSockets).
type splitter interface {
	Split(serving, canary int, share float64) error
	SplitState() (SplitState, bool)
	mark() splitMark
	restore(splitMark) error
}

var _ splitter = (*GenSockets)(nil)

// Split sends share (0 to 1) of the new connections to canary's socket
// and the rest to serving's, with one map update (see steer.Group.Split):
// the kernel's hash of each connection's 4-tuple decides, so a 4-tuple
// always lands on the same generation while the split stays. Connections
// queued on a closing socket move to serving's (to canary's if serving's
// is the one closing). A share of 0 is Serve(serving). Serve ends a split;
// so does the canary's socket closing once its generations have exited.
// Both generations need sockets of their own that are still in use. Other
// sockets whose generations have all exited are then closed, as Serve
// does.
func (s *GenSockets) Split(serving, canary int, share float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sg, cg := s.byGen[serving], s.byGen[canary]
	for _, g := range []struct {
		gen int
		gl  *genListener
	}{{serving, sg}, {canary, cg}} {
		if g.gl == nil || g.gl.done {
			return fmt.Errorf("listen %s: split: generation %d has no socket in use", s.Spec.Raw, g.gen)
		}
	}
	if sg == cg {
		return fmt.Errorf("listen %s: split: generations %d and %d share one socket", s.Spec.Raw, serving, canary)
	}
	if err := s.group.Split(sg.l, cg.l, share); err != nil {
		return fmt.Errorf("listen %s: split generations %d and %d: %w", s.Spec.Raw, serving, canary, err)
	}
	s.serving, s.canary, s.split = sg, cg, SplitState{Serving: serving, Canary: canary, Share: share}
	if share == 0 {
		s.canary, s.split = nil, SplitState{}
	}
	return s.removeDoneLocked()
}

// SplitState returns the current split, false without one.
func (s *GenSockets) SplitState() (SplitState, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.split, s.canary != nil
}

// splitMark is a GenSockets' steering, for a Table to restore when a split
// of its listeners fails part-way.
type splitMark struct {
	serving, canary *genListener
	split           SplitState
}

// mark returns the current steering.
func (s *GenSockets) mark() splitMark {
	s.mu.Lock()
	defer s.mu.Unlock()
	return splitMark{serving: s.serving, canary: s.canary, split: s.split}
}

// restore steers as m says (nothing when m has no serving socket).
func (s *GenSockets) restore(m splitMark) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var err error
	switch {
	case m.serving == nil:
		return nil
	case m.canary == nil:
		err = s.group.Serve(m.serving.l)
	default:
		err = s.group.Split(m.serving.l, m.canary.l, m.split.Share)
	}
	if err != nil {
		return fmt.Errorf("listen %s: restore steering: %w", s.Spec.Raw, err)
	}
	s.serving, s.canary, s.split = m.serving, m.canary, m.split
	return nil
}

// Split returns the entry's split, false without one (and for steerings
// that cannot split).
func (e Entry) Split() (SplitState, bool) {
	if sp, ok := e.Steering.(splitter); ok {
		return sp.SplitState()
	}
	return SplitState{}, false
}

// Split sends share (0 to 1) of the new connections of every listener to
// generation newGen and the rest to oldGen (see GenSockets.Split), one map
// update per listener. Every listener must be BPF-steered: otherwise it
// returns a *SplitError (errors.Is ErrCannotSplit) naming the first that
// is not, and changes nothing; a nil or empty Table returns one too. If a
// listener's split fails, the listeners already split are steered back as
// they were and the error says which failed.
func (t *Table) Split(oldGen, newGen int, share float64) error {
	if t == nil {
		return &SplitError{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	sps, err := t.splitters()
	if err != nil {
		return err
	}
	marks := make([]splitMark, len(sps))
	for i, sp := range sps {
		marks[i] = sp.mark()
		if err := sp.Split(oldGen, newGen, share); err != nil {
			errs := []error{err}
			for j := range i {
				errs = append(errs, sps[j].restore(marks[j]))
			}
			return errors.Join(errs...)
		}
	}
	return nil
}

// CanSplit returns the *SplitError Split would refuse with before
// changing anything, nil when every listener can split by weight.
func (t *Table) CanSplit() error {
	if t == nil {
		return &SplitError{}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	_, err := t.splitters()
	return err
}

// splitters returns each listener's splitter, or a *SplitError naming the
// first listener that has none (one without a listener for no listeners).
// t.mu is held.
func (t *Table) splitters() ([]splitter, error) {
	if len(t.entries) == 0 {
		return nil, &SplitError{}
	}
	sps := make([]splitter, 0, len(t.entries))
	for _, e := range t.entries {
		sp, ok := e.Steering.(splitter)
		if !ok {
			return nil, &SplitError{Listener: e.Socket.Spec.Raw, Mode: e.Mode()}
		}
		sps = append(sps, sp)
	}
	return sps, nil
}

// SplitState returns the split of the table's first listener (Split sets
// the same on all), false without one or for a nil Table.
func (t *Table) SplitState() (SplitState, bool) {
	es := t.Entries()
	if len(es) == 0 {
		return SplitState{}, false
	}
	return es[0].Split()
}
