package supervise

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/status"
)

// Line counts of the reports built from an app's log.
const (
	// tailLines is the number of lines Tail returns (reload failure reports).
	tailLines = 40
	// tracebackScan is the number of a crashed generation's last stderr
	// lines searched for a Python traceback.
	tracebackScan = 200
	// outputDrainWait bounds the wait for an exited generation's output
	// pipes to reach EOF before its last lines are read.
	outputDrainWait = 500 * time.Millisecond
	// logCloseLimit bounds how long a stopping Manager waits for its apps'
	// captures to finish and their sinks to take the last lines.
	logCloseLimit = 5 * time.Second
)

// fdsOf returns the output read ends o holds, to hand over to a successor
// image.
func fdsOf(o *logs.Output) outFDs {
	so, se := o.FDs()
	return outFDs{stdout: so, stderr: se}
}

// outFDs are the read ends of a generation's output pipes (-1: none).
type outFDs struct{ stdout, stderr int }

// noOutFDs is the outFDs of a generation without captured output.
var noOutFDs = outFDs{stdout: -1, stderr: -1}

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

// Traceback returns the last Python traceback the generation wrote to
// stderr and its exception line (see gunicorn.Traceback). After an exit it
// waits briefly for the output pipes to drain, as Tail does.
func (g *Generation) Traceback() (tb []string, exception string) {
	if g.out == nil {
		return nil, ""
	}
	g.waitOutput()
	return gunicorn.Traceback(g.out.Texts(logs.Query{Stream: logs.Stderr, N: tracebackScan}))
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

// noteExit records g's exit in its app's log: after an unexpected exit the
// app's status shows g's traceback, and a warning names the exit status,
// the traceback's exception line and the last stderr line (read once the
// output drained, off the caller's goroutine).
func (m *Manager) noteExit(g *Generation) {
	l := m.view(g.App).log
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
		m.logger.Warn("exited unexpectedly", "app", g.App, "generation", g.ID, "status", g.Exit().String(), "exception", exception, "last_stderr", last)
	}()
}

// logReport fills the log parts of a snapshot: lines dropped, and the
// traceback of an unexpected exit while the app is not running.
func (m *Manager) logReport(s *status.AppSnapshot) {
	l := m.view(s.Name).log
	if l == nil {
		return
	}
	s.LogDropped = l.Dropped()
	gen := l.Crashed()
	if gen == 0 || s.State == status.Running || s.State == status.Stopping {
		return
	}
	s.Traceback, _ = gunicorn.Traceback(logs.Texts(l.Lines(logs.Query{Gen: gen, Stream: logs.Stderr, N: tracebackScan})))
}

// Log returns app name's log, for reading its recent lines and following
// it (`supctl logs`).
func (m *Manager) Log(name string) (*logs.App, error) {
	l := m.view(name).log
	ok := l != nil
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchApp, name)
	}
	return l.App, nil
}

// ReopenLog reopens app name's log file (after an external logrotate moved
// it; nothing to do for other sinks) and sends USR1 to its running Gunicorn
// master, which reopens Gunicorn's own log files.
func (m *Manager) ReopenLog(name string) error {
	l := m.view(name).log
	ok := l != nil
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSuchApp, name)
	}
	var errs []error
	if err := l.Reopen(); err != nil {
		errs = append(errs, err)
	}
	a, err := m.owner(name)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if s := a.snap.Load(); a.cfg.Kind == config.KindGunicorn && s.State == status.Running && s.MasterPID > 0 {
		if err := unix.Kill(s.MasterPID, unix.SIGUSR1); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("app %s: USR1 to master %d: %w", name, s.MasterPID, err))
		}
	}
	return errors.Join(errs...)
}

// ReopenLogs is ReopenLog for every app: what SIGUSR1 to the supervisor
// does after an external logrotate. It returns every app's error, joined.
func (m *Manager) ReopenLogs() error {
	var errs []error
	for _, a := range m.owners() {
		errs = append(errs, m.ReopenLog(a.cfg.Name))
	}
	return errors.Join(errs...)
}

// forkCaptured starts spec with its stdout and stderr on two pipes whose
// read ends the app's log captures as generation id (see logs.AppLog.Start).
func (m *Manager) forkCaptured(app string, id int, spec proc.Spec) (int, <-chan proc.ExitInfo, *logs.Output, error) {
	var exitCh <-chan proc.ExitInfo
	pid, out, err := m.view(app).log.Start(app, id, func(stdout, stderr int) (int, error) {
		pid, ch, err := m.reaper.ForkExec(spec, stdout, stderr)
		exitCh = ch
		return pid, err
	})
	if err != nil {
		return 0, nil, nil, err
	}
	return pid, exitCh, out, nil
}

// adoptOutput captures the output pipes a previous image handed over with
// generation g (nil when it handed over none). A descriptor that cannot be
// adopted is closed and logged: the generation runs on, its output on that
// stream is lost.
func (m *Manager) adoptOutput(app string, g *GenHandover) *logs.Output {
	return m.view(app).log.AdoptOutput(app, g.ID, g.OutFD, g.ErrFD, func(err error) {
		m.logger.Error("adopt output pipe", "app", app, "generation", g.ID, "err", err)
	})
}
