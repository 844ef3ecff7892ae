package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
)

// Memory bounds of each app's log: with hundreds of apps per supervisor the
// package defaults (a 1 MiB sink queue, a 256 KiB ring) would add up.
const (
	appLogQueueBytes = 256 << 10
	appLogRingBytes  = 128 << 10
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

// appLog is one app's log: the capture of its generations, its ring, its
// sink (and the file behind it, for log = "file").
type appLog struct {
	*logs.App
	// file is the app's FileSink; nil unless log = "file".
	file *logs.FileSink
	// crashGen is the generation (as its lines are tagged) whose
	// unexpected exit is the app's latest exit; 0 when the latest exit was
	// expected or there was none.
	crashGen atomic.Int64

	mu       sync.Mutex
	captures map[*logs.Capture]struct{}
}

// newAppLog creates app's log: its sink is shared (log = "stdout"), a
// rotated file (log = "file") or none.
func newAppLog(app *config.App, shared io.Writer, logger *slog.Logger) (*appLog, error) {
	l := &appLog{captures: map[*logs.Capture]struct{}{}}
	var sink io.Writer
	switch app.Log.Target {
	case config.LogStdout:
		sink = shared
	case config.LogFile:
		f, err := logs.NewFileSink(logs.FileOptions{
			Path: app.Log.File, MaxSizeMB: app.Log.MaxSizeMB, MaxFiles: app.Log.MaxFiles, Compress: app.Log.Compress,
			UID: app.Identity.UID,
			OnError: func(err error) {
				logger.Warn("app log file: rotated files", "app", app.Name, "err", err)
			},
		})
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", app.Name, err)
		}
		l.file, sink = f, f
	}
	name := app.Name
	l.App = logs.NewApp(name, logs.Options{
		Sink:       sink,
		Timestamps: app.Log.Timestamps,
		QueueBytes: appLogQueueBytes,
		RingBytes:  appLogRingBytes,
		OnSinkError: func(err error) {
			logger.Warn("app log sink failing; lines are dropped until it recovers", "app", name, "err", err)
		},
	})
	return l, nil
}

// attach starts capturing generation gen's stdout and stderr read ends
// (either or both may be nil) and tracks the capture until it is done.
func (l *appLog) attach(gen int, stdout, stderr *os.File) *output {
	if stdout == nil && stderr == nil {
		// Nothing to read: the capture is done within Attach, which calls
		// its onDone there, so it is never tracked (and l.mu is not taken).
		return &output{log: l, gen: gen, capture: l.Attach(gen, nil, nil, nil)}
	}
	var c *logs.Capture
	// l.mu is held until c is tracked: a capture done at once is untracked
	// after that, not before.
	l.mu.Lock()
	c = l.Attach(gen, stdout, stderr, func() {
		l.mu.Lock()
		delete(l.captures, c)
		l.mu.Unlock()
	})
	l.captures[c] = struct{}{}
	l.mu.Unlock()
	return &output{log: l, gen: gen, capture: c}
}

// close waits until ctx ends for the captures still reading (a descendant
// may hold a pipe open), stops them, then ends the log and closes its file.
func (l *appLog) close(ctx context.Context) error {
	l.mu.Lock()
	live := make([]*logs.Capture, 0, len(l.captures))
	for c := range l.captures {
		live = append(live, c)
	}
	l.mu.Unlock()
	var errs []error
	for _, c := range live {
		select {
		case <-c.Done():
		case <-ctx.Done():
			errs = append(errs, c.Close())
		}
	}
	errs = append(errs, l.Close(ctx))
	if l.file != nil {
		errs = append(errs, l.file.Close())
	}
	return errors.Join(errs...)
}

// closeAppLogs ends every app's log, each within limit (0: without waiting
// for captures or sinks).
func closeAppLogs(apps map[string]*appLog, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var errs []error
	for _, l := range apps {
		errs = append(errs, l.close(ctx))
	}
	return errors.Join(errs...)
}

// output is a generation's captured stdout and stderr. A USR2 child master
// shares the pipes of the generation that forked it, so gen (the tag of the
// lines) may be an earlier generation than the one holding the output.
type output struct {
	log     *appLog
	gen     int
	capture *logs.Capture
}

// fds returns the read ends to hand over to a successor image.
func (o *output) fds() outFDs {
	so, se := o.capture.FDs()
	return outFDs{stdout: so, stderr: se}
}

// texts returns the text of the lines matching q.
func (o *output) texts(q logs.Query) []string {
	q.Gen = o.gen
	return lineTexts(o.log.Lines(q))
}

func lineTexts(lines []logs.Line) []string {
	out := make([]string, len(lines))
	for i := range lines {
		out[i] = lines[i].Text
	}
	return out
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
		case <-g.out.capture.Done():
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
	return gunicorn.Traceback(g.out.texts(logs.Query{Stream: logs.Stderr, N: tracebackScan}))
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
		l.crashGen.Store(0)
		return
	}
	l.crashGen.Store(int64(g.out.gen))
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
func (m *Manager) logReport(s *AppSnapshot) {
	l := m.view(s.Name).log
	if l == nil {
		return
	}
	s.LogDropped = l.Dropped()
	gen := l.crashGen.Load()
	if gen == 0 || s.State == StateRunning || s.State == StateStopping {
		return
	}
	s.Traceback, _ = gunicorn.Traceback(lineTexts(l.Lines(logs.Query{Gen: int(gen), Stream: logs.Stderr, N: tracebackScan})))
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
	if l.file != nil {
		errs = append(errs, l.file.Reopen())
	}
	a, err := m.owner(name)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if s := a.snap.Load(); a.cfg.Kind == config.KindGunicorn && s.State == StateRunning && s.MasterPID > 0 {
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
// read ends the app's log captures as generation id.
func (m *Manager) forkCaptured(app string, id int, spec proc.Spec) (int, <-chan ExitInfo, *output, error) {
	var ends [4]*os.File // stdout r, w; stderr r, w
	closeAll := func() {
		for _, f := range ends {
			if f != nil {
				_ = f.Close() // unused pipe ends of a failed start
			}
		}
	}
	for i := 0; i < 4; i += 2 {
		r, w, err := logs.Pipe()
		if err != nil {
			closeAll()
			return 0, nil, nil, fmt.Errorf("app %s: %w", app, err)
		}
		ends[i], ends[i+1] = r, w
	}
	pid, exitCh, err := m.reaper.ForkExec(spec, int(ends[1].Fd()), int(ends[3].Fd()))
	for _, w := range []*os.File{ends[1], ends[3]} {
		_ = w.Close() // the child holds its copies; ours would keep EOF away
	}
	if err != nil {
		_ = ends[0].Close() // nothing was written to a pipe of a failed start
		_ = ends[2].Close()
		return 0, nil, nil, fmt.Errorf("app %s: %w", app, err)
	}
	return pid, exitCh, m.view(app).log.attach(id, ends[0], ends[2]), nil
}

// adoptOutput captures the output pipes a previous image handed over with
// generation g (nil when it handed over none). A descriptor that cannot be
// adopted is closed and logged: the generation runs on, its output on that
// stream is lost.
func (m *Manager) adoptOutput(app string, g *GenHandover) *output {
	var files [2]*os.File
	for i, fd := range []int{g.OutFD, g.ErrFD} {
		if fd < 0 {
			continue
		}
		f, err := logs.Adopt(fd, fmt.Sprintf("%s generation %d %s", app, g.ID, logs.Stream(i+1)))
		if err != nil {
			_ = unix.Close(fd) // unusable: reading it is what failed
			m.logger.Error("adopt output pipe", "app", app, "generation", g.ID, "err", err)
			continue
		}
		files[i] = f
	}
	if files[0] == nil && files[1] == nil {
		return nil
	}
	return m.view(app).log.attach(g.ID, files[0], files[1])
}
