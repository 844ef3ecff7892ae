package errinbox

import (
	"strings"
	"time"

	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/logs"
)

// Timing and buffering of Watch.
const (
	// tapBytes bounds the stderr lines (text and header) waiting for the
	// parser; beyond it lines are dropped and counted.
	tapBytes = 1 << 20
	// quietFlush: once no stderr line came for this long, a traceback whose
	// exception line was read is complete (a chain would have continued at
	// once) and a traceback cut short is forgotten.
	quietFlush = 500 * time.Millisecond
)

// lineSource is where the reader takes lines from (a logs.Tap).
type lineSource interface {
	Ready() <-chan struct{}
	Take(dst []logs.Line) ([]logs.Line, bool)
}

// Watch returns app's inbox, fed by a goroutine reading app's stderr
// through a tap until the log is closed. Each generation's lines are
// assembled apart, so that two generations writing at once do not mix.
func Watch(app *logs.App, opt Options) *Inbox {
	in := New(opt)
	tap := app.Tap(logs.Query{Stream: logs.Stderr}, tapBytes)
	in.dropped = tap.Dropped
	go in.read(tap, quietFlush)
	return in
}

// read feeds the lines of src into the inbox until src is done; quiet is
// how long without a line completes the tracebacks held.
func (in *Inbox) read(src lineSource, quiet time.Duration) {
	asm := map[int]*assembler{}
	last := map[int]time.Time{}
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	var batch []logs.Line
	for {
		select {
		case <-src.Ready():
			var done bool
			batch, done = src.Take(batch[:0])
			for i := range batch {
				l := &batch[i]
				in.line(asm, l, last[l.Gen])
				last[l.Gen] = l.Time
			}
			clear(batch)
			if cap(batch) > 4096 {
				batch = nil // a burst's backlog: not kept while idle
			}
			if done {
				in.flush(asm, last)
				return
			}
			timer.Reset(quiet)
		case <-timer.C:
			in.flush(asm, last)
		}
	}
}

// line takes one stderr line: a worker event is counted; every line goes
// to its generation's assembler; a traceback it completes is recorded at
// prev, the time of that generation's line before it. A split long line's
// continuation pieces are skipped.
func (in *Inbox) line(asm map[int]*assembler, l *logs.Line, prev time.Time) {
	if l.Part > 1 {
		return
	}
	if ev, ok := gunicorn.ParseWorkerLine(l.Text); ok {
		if ev.Timeout {
			in.WorkerTimeout()
		} else {
			in.WorkerKilled(ev.Signal)
		}
		in.WorkerDied(l.Gen)
	}
	a := asm[l.Gen]
	if a == nil {
		if !strings.HasPrefix(l.Text, tracebackHeader) {
			return // outside a traceback: nothing to assemble
		}
		a = &assembler{}
		asm[l.Gen] = a
	}
	if tb := a.feed(l.Text); tb != nil {
		in.Record(tb, l.Gen, prev)
	}
	if !a.pending() {
		delete(asm, l.Gen)
	}
}

// flush completes or forgets every traceback held (see quietFlush).
func (in *Inbox) flush(asm map[int]*assembler, last map[int]time.Time) {
	for gen, a := range asm {
		if tb := a.flush(); tb != nil {
			in.Record(tb, gen, last[gen])
		}
		delete(asm, gen)
	}
	clear(last)
}
