package logs

import (
	"sync"
	"sync/atomic"
)

// tapKeep is the capacity a drained tap keeps for its next lines; a larger
// backlog's memory is released once taken.
const tapKeep = 256

// Tap receives the lines of an app that match its query, for a parser that
// must never hold the app back: a line that finds the tap's backlog at its
// byte bound is dropped and counted (Dropped), and the tap goes on with
// later lines. An idle tap holds no lines and little memory.
type Tap struct {
	q        Query
	r        *ring
	maxBytes int
	ready    chan struct{}
	dropped  atomic.Uint64

	mu      sync.Mutex
	buf     []Line
	bytes   int
	closed  bool // guarded by mu
	removed bool // guarded by r.mu
}

// Tap returns a tap receiving every line matching q read from now on (q.N
// is ignored); maxBytes bounds the lines it holds for its reader (text and
// header, as the ring counts them; at least one line of MaxLine). The
// reader waits on Ready and calls Take until Take reports the tap done.
func (a *App) Tap(q Query, maxBytes int) *Tap {
	return a.ring.tap(q, max(maxBytes, a.maxLine+lineOverhead))
}

func (r *ring) tap(q Query, maxBytes int) *Tap {
	t := &Tap{q: q, r: r, maxBytes: maxBytes, ready: make(chan struct{}, 1)}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		t.removed = true
		t.end()
		return t
	}
	if r.taps == nil {
		r.taps = map[*Tap]struct{}{}
	}
	r.taps[t] = struct{}{}
	return t
}

// Ready receives a value once lines are waiting or the tap ended.
func (t *Tap) Ready() <-chan struct{} { return t.ready }

// Take appends the lines waiting, oldest first, to dst and returns it;
// done is true once the tap has ended and every line was taken.
func (t *Tap) Take(dst []Line) (lines []Line, done bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dst = append(dst, t.buf...)
	clear(t.buf)
	t.buf, t.bytes = t.buf[:0], 0
	if cap(t.buf) > tapKeep {
		t.buf = nil
	}
	return dst, t.closed
}

// offer queues the matching lines of batch, counting those beyond the byte
// bound, and signals the reader. r.mu is held.
func (t *Tap) offer(batch []Line) {
	t.mu.Lock()
	n := 0
	for i := range batch {
		l := &batch[i]
		if !t.q.match(l) {
			continue
		}
		if t.bytes+l.cost() > t.maxBytes {
			t.dropped.Add(1)
			continue
		}
		t.buf = append(t.buf, *l)
		t.bytes += l.cost()
		n++
	}
	t.mu.Unlock()
	if n > 0 {
		t.signal()
	}
}

func (t *Tap) signal() {
	select {
	case t.ready <- struct{}{}:
	default:
	}
}

// end marks the tap done and wakes its reader.
func (t *Tap) end() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.signal()
}

// remove unsubscribes t from its ring and ends it. r.mu is held.
func (t *Tap) remove() {
	if t.removed {
		return
	}
	t.removed = true
	delete(t.r.taps, t)
	t.end()
}

// Close stops the tap; lines already queued can still be taken. Safe to
// call more than once.
func (t *Tap) Close() {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	t.remove()
}

// Dropped returns how many matching lines the tap lost because its reader
// was behind by the byte bound.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }
