package logs

import (
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// sinkConfig is where an app's lines go and how they are written.
type sinkConfig struct {
	w          io.Writer // nil: no sink, lines only reach the ring
	timestamps bool
}

// sinkStuck is how long a capture waits for room in a full queue while the
// writer makes no progress (takes no lines, finishes no write) before the
// sink counts as stuck.
const sinkStuck = 250 * time.Millisecond

// queue sits between an app's captures and its sink writer. When a line
// does not fit in max bytes, push waits for the writer as long as it makes
// progress (a healthy disk, however loaded, so that no line is lost, as if
// the app wrote to the file itself); once the writer made none for
// sinkStuck the sink is stuck: lines that do not fit are dropped at once
// and counted, until the writer progresses again, and a drop notice takes
// their place once a line fits again. So a stuck sink holds an app's
// output for at most sinkStuck, once per stall.
type queue struct {
	mu      sync.Mutex
	cond    sync.Cond // signalled when lines arrive or the queue closes
	app     string
	max     int
	lines   []Line
	bytes   int
	pending uint64 // dropped lines not yet reported by a notice
	lastGen int    // generation of the last dropped line
	sink    sinkConfig
	closed  bool
	dropped *atomic.Uint64
	// full receives a token when the queued lines reach urgent bytes;
	// done is closed by close. Both end the writer's pause (see pace).
	full   chan struct{}
	done   chan struct{}
	urgent int
	// progress counts the writer's takes and finished writes; room
	// receives a token at each. stuck is set when a push waited sinkStuck
	// without progress, and cleared by progress.
	progress uint64
	room     chan struct{}
	stuck    bool
}

func newQueue(app string, max int, sink sinkConfig, dropped *atomic.Uint64) *queue {
	q := &queue{app: app, max: max, sink: sink, dropped: dropped,
		full: make(chan struct{}, 1), done: make(chan struct{}), room: make(chan struct{}, 1), urgent: min(chunkBytes, max/2)}
	q.cond.L = &q.mu
	return q
}

// push queues batch for the sink, waiting for room while the writer makes
// progress and dropping what does not fit once the sink is stuck (see
// queue). Without a sink, or once closed, it does nothing.
func (q *queue) push(batch []Line) {
	q.mu.Lock()
	if q.sink.w == nil || q.closed {
		q.mu.Unlock()
		return
	}
	for i := range batch {
		c := batch[i].cost()
		if q.bytes+c > q.max && !q.waitRoom(c) {
			q.pending++
			q.lastGen = batch[i].Gen
			q.dropped.Add(1)
			continue
		}
		q.notePending()
		q.lines = append(q.lines, batch[i])
		q.bytes += c
	}
	urgent := q.bytes >= q.urgent
	q.mu.Unlock()
	q.wake(urgent)
}

// wake signals the writer that lines arrived, ending its pause if urgent.
func (q *queue) wake(urgent bool) {
	q.cond.Signal()
	if urgent {
		select {
		case q.full <- struct{}{}:
		default: // a token is waiting already
		}
	}
}

// waitRoom waits until c more bytes fit, as long as the writer progresses
// within sinkStuck of the wait's start or of its last progress; it reports
// whether they fit. It returns false at once while the sink is stuck, or
// once the queue closes or loses its sink. q.mu is held, and released while
// waiting.
func (q *queue) waitRoom(c int) bool {
	timer := time.NewTimer(sinkStuck)
	defer timer.Stop()
	for q.bytes+c > q.max {
		if q.stuck || q.closed || q.sink.w == nil {
			return false
		}
		seen := q.progress
		q.mu.Unlock()
		q.wake(true)
		expired := false
		select {
		case <-q.room:
		case <-q.done:
		case <-timer.C:
			expired = true
		}
		q.mu.Lock()
		switch {
		case q.progress != seen:
			timer.Reset(sinkStuck) // no stale expiry is received after Reset
		case expired:
			q.stuck = true
		}
	}
	return true
}

// progressed records the writer's progress (q.mu is held): the sink is not
// stuck, and a push waiting for room looks again.
func (q *queue) progressed() {
	q.progress++
	q.stuck = false
	select {
	case q.room <- struct{}{}:
	default: // a token is waiting already
	}
}

// wrote records a finished sink write.
func (q *queue) wrote() {
	q.mu.Lock()
	q.progressed()
	q.mu.Unlock()
}

// notePending queues the notice for the lines dropped since the last one.
// The notice is not charged against the bound. q.mu is held.
func (q *queue) notePending() {
	if q.pending > 0 {
		q.lines = append(q.lines, dropNotice(q.app, q.lastGen, q.pending))
		q.pending = 0
	}
}

// take waits for lines and returns all of them with the sink to write them
// to, handing spare over as the queue's next buffer. ok is false once the
// queue is closed and empty.
func (q *queue) take(spare []Line) (lines []Line, sink sinkConfig, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.lines) == 0 && q.pending == 0 && !q.closed {
		q.cond.Wait()
	}
	q.notePending()
	lines, q.lines, q.bytes = q.lines, spare[:0], 0
	q.progressed()
	return lines, q.sink, len(lines) > 0 || !q.closed
}

func (q *queue) setSink(s sinkConfig) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sink = s
}

// close makes the writer finish once the queued lines are written; later
// pushes are ignored.
func (q *queue) close() {
	q.mu.Lock()
	if !q.closed {
		q.closed = true
		close(q.done)
	}
	q.mu.Unlock()
	q.cond.Broadcast()
}

// chunkBytes is the size at which the writer hands formatted lines to the
// sink; a chunk holds whole lines only.
const chunkBytes = 64 << 10

// writePace is how long the writer waits, from taking lines to taking the
// next ones, while the queue holds less than a chunk (or half its bound):
// lines that trickle in are written together, so an app logging line by
// line costs one writer wake-up and one write per writePace, not one per
// line. It is also the most a line waits in the queue for that reason.
const writePace = 20 * time.Millisecond

// writer is the one goroutine that writes an app's lines to its sink.
type writer struct {
	q         *queue
	buf       []byte
	spare     []Line
	failed    uint64 // lines lost to failed writes, not yet reported
	broken    bool   // a failed write left an unterminated line in the sink
	lastGen   int
	stamps    stampCache
	paceEvery time.Duration // see writePace
	onError   func(error)
	dropped   *atomic.Uint64
	done      chan struct{}
}

func (w *writer) run() {
	defer close(w.done)
	pause := time.NewTimer(w.paceEvery)
	defer pause.Stop()
	for {
		lines, sink, ok := w.q.take(w.spare)
		if !ok {
			return
		}
		pause.Reset(w.paceEvery)
		if sink.w != nil {
			w.write(sink, lines)
		}
		clear(lines) // release the texts
		w.spare = lines[:0]
		w.pace(pause)
	}
}

// pace waits for pause (w.paceEvery after the last write began), unless the
// queue holds urgent bytes or closes first.
func (w *writer) pace(pause *time.Timer) {
	select {
	case <-pause.C:
	case <-w.q.full:
	case <-w.q.done:
	}
}

// write formats lines and hands them to the sink in chunks of whole lines.
func (w *writer) write(sink sinkConfig, lines []Line) {
	buf := w.buf[:0]
	start := 0
	for i := range lines {
		buf = w.format(buf, &lines[i], sink.timestamps)
		w.lastGen = lines[i].Gen
		if len(buf) >= chunkBytes || i == len(lines)-1 {
			w.flush(sink, buf, countLines(lines[start:i+1]))
			buf, start = buf[:0], i+1
		}
	}
	if cap(buf) > 4*chunkBytes {
		buf = nil
	}
	w.buf = buf
}

// format appends l formatted (see AppendFormat) to dst.
func (w *writer) format(dst []byte, l *Line, timestamps bool) []byte {
	if !timestamps {
		return appendLine(dst, l, nil)
	}
	return appendLine(dst, l, w.stamps.stamp(l.Time))
}

// countLines counts app lines, leaving out drop notices.
func countLines(lines []Line) uint64 {
	var n uint64
	for i := range lines {
		if lines[i].Stream != Notice {
			n++
		}
	}
	return n
}

// flush writes one chunk of n lines, preceded by the repair of an earlier
// failure (a newline ending a torn line, a drop notice). A failed write
// counts the chunk's lines as dropped.
func (w *writer) flush(sink sinkConfig, p []byte, n uint64) {
	if w.failed > 0 || w.broken {
		var pre []byte
		if w.broken {
			pre = append(pre, '\n')
		}
		if w.failed > 0 {
			notice := dropNotice(w.q.app, w.lastGen, w.failed)
			pre = w.format(pre, &notice, sink.timestamps)
		}
		if !w.try(sink, pre, n) {
			return
		}
		w.failed, w.broken = 0, false
	}
	w.try(sink, p, n)
}

// try writes p and reports whether it was written whole; on failure the n
// lines it carries are counted as dropped.
func (w *writer) try(sink sinkConfig, p []byte, n uint64) bool {
	written, err := sink.w.Write(p)
	w.q.wrote()
	if err == nil && written == len(p) {
		return true
	}
	if w.failed == 0 && w.onError != nil && err != nil {
		w.onError(err)
	}
	w.failed += n
	w.dropped.Add(n)
	w.broken = w.broken || (written > 0 && p[written-1] != '\n')
	return false
}
