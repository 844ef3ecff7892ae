package logs

import "sync/atomic"

// Tap receives the lines of an app that match its query, for a parser that
// must never hold the app back: a line that finds the tap's buffer full is
// dropped and counted (Dropped), and the tap goes on with later lines.
type Tap struct {
	// C delivers the matching lines in the order they were read. It is
	// closed when the tap or the app's log is closed.
	C <-chan Line

	c       chan Line
	q       Query
	r       *ring
	closed  bool // guarded by r.mu
	dropped atomic.Uint64
}

// Tap returns a tap receiving every line matching q read from now on
// (q.N is ignored); buffer is the number of lines it may fall behind before
// lines are dropped. The caller reads C until it is closed, or closes the
// tap.
func (a *App) Tap(q Query, buffer int) *Tap { return a.ring.tap(q, buffer) }

func (r *ring) tap(q Query, buffer int) *Tap {
	c := make(chan Line, max(buffer, 1))
	t := &Tap{C: c, c: c, q: q, r: r}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		t.closed = true
		close(c)
		return t
	}
	if r.taps == nil {
		r.taps = map[*Tap]struct{}{}
	}
	r.taps[t] = struct{}{}
	return t
}

// offer sends the matching lines of batch without blocking, counting those
// that find the buffer full. r.mu is held.
func (t *Tap) offer(batch []Line) {
	for i := range batch {
		if !t.q.match(&batch[i]) {
			continue
		}
		select {
		case t.c <- batch[i]:
		default:
			t.dropped.Add(1)
		}
	}
}

// end unsubscribes t and closes its channel. r.mu is held.
func (t *Tap) end() {
	if t.closed {
		return
	}
	t.closed = true
	delete(t.r.taps, t)
	close(t.c)
}

// Close stops the tap and closes C. Safe to call more than once.
func (t *Tap) Close() {
	t.r.mu.Lock()
	defer t.r.mu.Unlock()
	t.end()
}

// Dropped returns how many matching lines the tap lost because its reader
// was behind by a full buffer.
func (t *Tap) Dropped() uint64 { return t.dropped.Load() }
