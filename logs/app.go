package logs

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults for Options fields left at zero.
const (
	DefaultMaxLine    = 64 << 10
	DefaultQueueBytes = 1 << 20
	DefaultRingBytes  = 256 << 10
)

// Options configure an App's log.
type Options struct {
	// Sink receives the formatted lines (whole lines per Write). Nil means
	// no sink (log = "none"): lines still reach the ring. Writes may block;
	// the capture waits for room in the queue only while writes progress
	// (see sinkStuck).
	Sink io.Writer
	// Timestamps puts the time the supervisor read each line in front of it.
	Timestamps bool
	// MaxLine is the longest line delivered whole (default DefaultMaxLine);
	// a longer one is split into marked pieces.
	MaxLine int
	// QueueBytes bounds the lines waiting for the sink (default
	// DefaultQueueBytes, at least one line of MaxLine).
	QueueBytes int
	// RingBytes bounds the recent lines kept in memory (default
	// DefaultRingBytes, at least one line of MaxLine).
	RingBytes int
	// OnSinkError, if set, is called from the writer goroutine with the
	// error that starts a run of failed sink writes (not for each one).
	OnSinkError func(error)
	// writePace replaces the package's writePace (tests).
	writePace time.Duration
}

func (o *Options) fill() {
	if o.MaxLine <= 0 {
		o.MaxLine = DefaultMaxLine
	}
	least := o.MaxLine + lineOverhead
	if o.QueueBytes <= 0 {
		o.QueueBytes = DefaultQueueBytes
	}
	if o.RingBytes <= 0 {
		o.RingBytes = DefaultRingBytes
	}
	if o.writePace <= 0 {
		o.writePace = writePace
	}
	o.QueueBytes = max(o.QueueBytes, least)
	o.RingBytes = max(o.RingBytes, least)
}

// App is the log of one app across its generations: captures feed it, the
// ring keeps its recent lines, one writer goroutine drains it into the sink.
type App struct {
	name      string
	maxLine   int
	ring      *ring
	queue     *queue
	writer    *writer
	dropped   atomic.Uint64
	closeOnce sync.Once
}

// NewApp starts the log of app name; Close ends it.
func NewApp(name string, opt Options) *App {
	opt.fill()
	a := &App{name: name, maxLine: opt.MaxLine, ring: newRing(opt.RingBytes)}
	a.queue = newQueue(name, opt.QueueBytes, sinkConfig{w: opt.Sink, timestamps: opt.Timestamps}, &a.dropped)
	a.writer = &writer{q: a.queue, paceEvery: opt.writePace, onError: opt.OnSinkError, dropped: &a.dropped, done: make(chan struct{})}
	go a.writer.run()
	return a
}

// Name returns the app's name.
func (a *App) Name() string { return a.name }

// SetSink switches the sink (nil: none) and the timestamp setting for lines
// captured from now on. Lines already queued go to the new sink.
func (a *App) SetSink(sink io.Writer, timestamps bool) {
	a.queue.setSink(sinkConfig{w: sink, timestamps: timestamps})
}

// Attach starts capturing generation gen: one goroutine per non-nil stream
// reads it until EOF, and no other goroutine waits on its behalf. Attach
// owns the files: they are closed at EOF or by Capture.Close. Both read
// ends should come from Pipe or Adopt, so that waiting costs no thread.
// onDone, if not nil, is called once, after Done is closed, from the
// goroutine of the last stream to finish (from Attach itself when both
// streams are nil).
func (a *App) Attach(gen int, stdout, stderr *os.File, onDone func()) *Capture {
	c := &Capture{done: make(chan struct{}), fds: [2]int{-1, -1}}
	finish := func() {
		close(c.done)
		if onDone != nil {
			onDone()
		}
	}
	var streams []*stream
	for i, f := range []*os.File{stdout, stderr} {
		if f == nil {
			continue
		}
		c.fds[i] = fdOf(f)
		c.files = append(c.files, f)
		streams = append(streams, &stream{app: a, f: f, tmpl: Line{App: a.name, Gen: gen, Stream: Stream(i + 1)}, split: splitter{max: a.maxLine}})
	}
	if len(streams) == 0 {
		finish()
		return c
	}
	var left atomic.Int32
	left.Store(int32(len(streams)))
	for _, s := range streams {
		go func() {
			s.run()
			_ = s.f.Close() // a read end, maybe closed by Capture.Close already: nothing is lost
			if left.Add(-1) == 0 {
				finish()
			}
		}()
	}
	return c
}

// publish hands a batch of lines to the ring (and its followers) and to the
// sink queue; it waits for room in the queue only while the sink's writes
// progress (see queue).
func (a *App) publish(batch []Line) {
	a.ring.add(batch)
	a.queue.push(batch)
}

// Lines returns the most recent lines held in memory that match q, oldest
// first: the source of `supctl logs APP -n N [--stderr]`, and, with
// Query{Stream: Stderr, Gen: g}, of the traceback of a generation that
// exited unexpectedly.
func (a *App) Lines(q Query) []Line { return a.ring.snapshot(q) }

// Follow returns the recent lines matching q (as Lines does) and a Follower
// receiving every matching line read after them, nothing lost or repeated.
// buffer is the number of lines the follower may fall behind before it is
// ended (see Follower.Lagged). The caller closes the follower.
func (a *App) Follow(q Query, buffer int) ([]Line, *Follower) { return a.ring.follow(q, buffer) }

// Dropped returns how many lines never reached the sink, because its queue
// was full or its writes failed (supervisor_log_dropped_lines_total{app}).
// The ring is not affected by drops.
func (a *App) Dropped() uint64 { return a.dropped.Load() }

// Close ends the log once the queued lines are written: followers are
// closed, later lines reach the ring only. It waits for the writer until
// ctx is done and then returns an error: a sink write that blocks cannot be
// interrupted, and the writer finishes when it returns. Captures are not
// stopped: close them first. Safe to call more than once.
func (a *App) Close(ctx context.Context) error {
	a.closeOnce.Do(func() {
		a.ring.close()
		a.queue.close()
	})
	select {
	case <-a.writer.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("log of app %s: sink still writing: %w", a.name, ctx.Err())
	}
}
