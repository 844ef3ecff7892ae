package logs

import (
	"sync"
	"sync/atomic"
	"time"
)

// Query selects lines from an app's ring.
type Query struct {
	// N is the maximum number of lines returned, the most recent ones;
	// 0 means every line held.
	N int
	// Stream, when not 0, keeps only the lines of that stream.
	Stream Stream
	// Gen, when not 0, keeps only the lines of that generation.
	Gen int
	// Since, when not zero, keeps only the lines read at or after it.
	Since time.Time
}

func (q *Query) match(l *Line) bool {
	return (q.Stream == 0 || l.Stream == q.Stream) && (q.Gen == 0 || l.Gen == q.Gen) &&
		(q.Since.IsZero() || !l.Time.Before(q.Since))
}

// ring holds an app's recent lines within a byte bound (text plus header,
// see Line.cost) and hands new lines to followers. All methods are safe for
// concurrent use; none blocks on a follower.
type ring struct {
	mu        sync.Mutex
	max       int
	buf       []Line // circular: n lines from head
	head, n   int
	bytes     int
	followers map[*Follower]struct{}
	taps      map[*Tap]struct{}
	closed    bool
}

func newRing(max int) *ring {
	return &ring{max: max, followers: make(map[*Follower]struct{})}
}

// add stores batch, evicting the oldest lines beyond the bound, and offers
// it to every follower.
func (r *ring) add(batch []Line) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for i := range batch {
		r.push(batch[i])
	}
	for f := range r.followers {
		f.offer(batch)
	}
	for t := range r.taps {
		t.offer(batch)
	}
}

func (r *ring) push(l Line) {
	c := l.cost()
	for r.n > 0 && r.bytes+c > r.max {
		r.bytes -= r.buf[r.head].cost()
		r.buf[r.head] = Line{}
		r.head = (r.head + 1) % len(r.buf)
		r.n--
	}
	if r.n == len(r.buf) {
		r.grow()
	}
	r.buf[(r.head+r.n)%len(r.buf)] = l
	r.n++
	r.bytes += c
}

func (r *ring) grow() {
	next := make([]Line, max(16, 2*len(r.buf)))
	for i := 0; i < r.n; i++ {
		next[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = next, 0
}

// lines returns the most recent lines matching q, oldest first. r.mu is held.
func (r *ring) lines(q Query) []Line {
	var out []Line
	for i := r.n - 1; i >= 0 && (q.N == 0 || len(out) < q.N); i-- {
		l := &r.buf[(r.head+i)%len(r.buf)]
		if q.match(l) {
			out = append(out, *l)
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// usage returns the bytes charged for the lines held and their number.
func (r *ring) usage() (bytes, lines int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bytes, r.n
}

func (r *ring) snapshot(q Query) []Line {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lines(q)
}

// follow returns the recent lines matching q and a follower that receives
// every later matching line, with nothing lost or repeated in between.
func (r *ring) follow(q Query, buffer int) ([]Line, *Follower) {
	c := make(chan Line, max(buffer, 1))
	f := &Follower{C: c, c: c, q: q, r: r}
	r.mu.Lock()
	defer r.mu.Unlock()
	recent := r.lines(q)
	if r.closed {
		f.closed = true
		close(c)
		return recent, f
	}
	r.followers[f] = struct{}{}
	return recent, f
}

// close ends every follower and tap; later ones get a closed channel.
func (r *ring) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for f := range r.followers {
		f.end()
	}
	for t := range r.taps {
		t.remove()
	}
}

// Follower receives an app's lines as they are read.
type Follower struct {
	// C delivers the lines in order. It is closed when the follower is
	// closed, when the app's log is closed, or when the follower fell
	// behind (Lagged then reports true).
	C <-chan Line

	c      chan Line
	q      Query
	r      *ring
	closed bool // guarded by r.mu
	lagged atomic.Bool
}

// offer sends the matching lines of batch without blocking; a follower whose
// buffer is full is ended and marked lagged. r.mu is held.
func (f *Follower) offer(batch []Line) {
	for i := range batch {
		if !f.q.match(&batch[i]) {
			continue
		}
		select {
		case f.c <- batch[i]:
		default:
			f.lagged.Store(true)
			f.end()
			return
		}
	}
}

// end unsubscribes f and closes its channel. r.mu is held.
func (f *Follower) end() {
	if f.closed {
		return
	}
	f.closed = true
	delete(f.r.followers, f)
	close(f.c)
}

// Close stops the follower and closes C. It is safe to call more than once
// and after the follower was ended for lagging.
func (f *Follower) Close() {
	f.r.mu.Lock()
	defer f.r.mu.Unlock()
	f.end()
}

// Lagged reports whether C was closed because the follower did not read
// fast enough: lines after the last one received were not delivered.
func (f *Follower) Lagged() bool { return f.lagged.Load() }
