package gen

import (
	"log/slog"
	"time"

	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/logs"
)

// Line counts and waits of the reports built from a generation's output.
const (
	// tailLines is the number of lines Tail returns (reload failure reports).
	tailLines = 40
	// TracebackScan is the number of a crashed generation's last stderr
	// lines searched for a Python traceback.
	TracebackScan = 200
	// outputDrainWait bounds the wait for an exited generation's output
	// pipes to reach EOF before its last lines are read.
	outputDrainWait = 500 * time.Millisecond
)

// outFDs are the read ends of a generation's output pipes (-1: none).
type outFDs struct{ stdout, stderr int }

// noOutFDs is the outFDs of a generation without captured output.
var noOutFDs = outFDs{stdout: -1, stderr: -1}

// fdsOf returns the output read ends o holds, to hand over to a successor
// image.
func fdsOf(o *logs.Output) outFDs {
	so, se := o.FDs()
	return outFDs{stdout: so, stderr: se}
}

// handoverFDs returns the output read ends to hand over with g: none once
// its capture is done, since the capture closed them (the numbers may name
// other files by then).
func (g *Generation) handoverFDs() outFDs {
	if g.out != nil {
		select {
		case <-g.out.Done():
			return noOutFDs
		default:
		}
	}
	return g.outFD
}

// Tail returns the last lines the generation wrote to stdout and stderr
// (from its app's in-memory log). After an exit it waits briefly for the
// output pipes to drain, so a traceback printed just before the exit is
// included.
func (g *Generation) Tail() []string {
	if g.out == nil {
		return nil
	}
	g.waitOutput()
	return g.out.Texts(logs.Query{N: tailLines})
}

// Traceback returns the last Python traceback the generation wrote to
// stderr and its exception line (see gunicorn.Traceback). After an exit it
// waits briefly for the output pipes to drain, as Tail does.
func (g *Generation) Traceback() (tb []string, exception string) {
	if g.out == nil {
		return nil, ""
	}
	g.waitOutput()
	return gunicorn.Traceback(g.out.Texts(logs.Query{Stream: logs.Stderr, N: TracebackScan}))
}

// waitOutput waits up to outputDrainWait for the output of an exited
// generation to reach EOF, so that what it printed just before exiting is
// in its log.
func (g *Generation) waitOutput() {
	if !g.Exited() || g.outEOF == nil {
		return
	}
	t := time.NewTimer(outputDrainWait)
	defer t.Stop()
	select {
	case <-g.outEOF:
	case <-t.C:
	}
}

// unexpectedExit reports whether g exited on its own with a failure: not
// stopped or killed by the supervisor, and not with status 0.
func (g *Generation) unexpectedExit() bool {
	if g.stopAsked.Load() {
		return false
	}
	e := g.Exit()
	return e.Code != 0 || e.Signal != 0
}

// noteExit records g's exit in its app's log l: after an unexpected exit
// the app's status shows g's traceback, and a warning names the exit
// status, the traceback's exception line and the last stderr line (read
// once the output drained, off the caller's goroutine).
func noteExit(g *Generation, l *logs.AppLog, logger *slog.Logger) {
	if l == nil || g.out == nil {
		return
	}
	if !g.unexpectedExit() {
		l.NoteCrash(0)
		return
	}
	l.NoteCrash(g.out.Gen())
	go func() {
		tb, exception := g.Traceback()
		last := ""
		if len(tb) > 0 {
			last = tb[len(tb)-1]
		}
		logger.Warn("exited unexpectedly", "app", g.App, "generation", g.ID, "status", g.Exit().String(), "exception", exception, "last_stderr", last)
	}()
}
