package errinbox

import (
	"time"

	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/logs"
)

// Timing and buffering of Watch.
const (
	// tapBuffer is the number of stderr lines the parser may fall behind
	// before lines are dropped (and counted).
	tapBuffer = 8192
	// quietFlush: once no stderr line came for this long, a traceback whose
	// exception line was read is complete (a chain would have continued at
	// once) and a traceback cut short is forgotten.
	quietFlush = 500 * time.Millisecond
)

// Watch returns app's inbox, fed by a goroutine reading app's stderr
// through a tap until the log is closed. Each generation's lines are
// assembled apart, so that two generations writing at once do not mix.
func Watch(app *logs.App, opt Options) *Inbox {
	in := New(opt)
	tap := app.Tap(logs.Query{Stream: logs.Stderr}, tapBuffer)
	in.dropped = tap.Dropped
	go in.read(tap.C, quietFlush)
	return in
}

// read feeds lines into the inbox until lines is closed; quiet is how long
// without a line completes the tracebacks held.
func (in *Inbox) read(lines <-chan logs.Line, quiet time.Duration) {
	asm := map[int]*assembler{}
	last := map[int]time.Time{}
	timer := time.NewTimer(quiet)
	defer timer.Stop()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				in.flush(asm, last)
				return
			}
			in.line(asm, &l, last[l.Gen])
			last[l.Gen] = l.Time
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
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
	}
	a := asm[l.Gen]
	if a == nil {
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
