package logs

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
)

// Memory bounds of each app's log: with hundreds of apps per supervisor the
// package defaults (a 1 MiB sink queue, a 256 KiB ring) would add up.
const (
	appLogQueueBytes = 256 << 10
	appLogRingBytes  = 128 << 10
)

// AppLog is one configured app's log: the capture of its generations, its
// ring, its sink (and the file behind it, for log = "file").
type AppLog struct {
	*App
	// file is the app's FileSink; nil unless log = "file".
	file *FileSink
	// crashGen is the generation (as its lines are tagged) whose
	// unexpected exit is the app's latest exit; 0 when the latest exit was
	// expected or there was none.
	crashGen atomic.Int64

	mu       sync.Mutex
	captures map[*Capture]struct{}
}

// OpenApp creates app's log: its sink is shared (log = "stdout"), a
// rotated file (log = "file") or none. Sink trouble is reported to logger.
// The error names the app and its log file.
func OpenApp(app *config.App, shared io.Writer, logger *slog.Logger) (*AppLog, error) {
	l := &AppLog{captures: map[*Capture]struct{}{}}
	var sink io.Writer
	switch app.Log.Target {
	case config.LogStdout:
		sink = shared
	case config.LogFile:
		f, err := NewFileSink(FileOptions{
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
	l.App = NewApp(name, Options{
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

// NoteCrash records that generation gen's unexpected exit is the app's
// latest exit (0: the latest exit was expected).
func (l *AppLog) NoteCrash(gen int) { l.crashGen.Store(int64(gen)) }

// Crashed returns the generation NoteCrash last recorded (0 for none).
func (l *AppLog) Crashed() int { return int(l.crashGen.Load()) }

// CrashTail returns the text of the last n stderr lines of the generation
// NoteCrash last recorded, nil when it recorded none.
func (l *AppLog) CrashTail(n int) []string {
	gen := l.Crashed()
	if gen == 0 {
		return nil
	}
	return Texts(l.Lines(Query{Gen: gen, Stream: Stderr, N: n}))
}

// Reopen reopens the log file (after an external logrotate moved it); nil
// for other sinks.
func (l *AppLog) Reopen() error {
	if l.file == nil {
		return nil
	}
	return l.file.Reopen()
}

// Track starts capturing generation gen's stdout and stderr read ends
// (either or both may be nil) and tracks the capture until it is done.
func (l *AppLog) Track(gen int, stdout, stderr *os.File) *Output {
	if stdout == nil && stderr == nil {
		// Nothing to read: the capture is done within Attach, which calls
		// its onDone there, so it is never tracked (and l.mu is not taken).
		return &Output{log: l, gen: gen, capture: l.Attach(gen, nil, nil, nil)}
	}
	var c *Capture
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
	return &Output{log: l, gen: gen, capture: c}
}

// Close waits until ctx ends for the captures still reading (a descendant
// may hold a pipe open), stops them, then ends the log and closes its file.
// It returns every error met, joined.
func (l *AppLog) Close(ctx context.Context) error {
	l.mu.Lock()
	live := make([]*Capture, 0, len(l.captures))
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
	errs = append(errs, l.App.Close(ctx))
	if l.file != nil {
		errs = append(errs, l.file.Close())
	}
	return errors.Join(errs...)
}

// CloseApps ends the logs apps (a nil one: none), all within limit (0:
// without waiting for captures or sinks). It returns every error met,
// joined.
func CloseApps(limit time.Duration, apps ...*AppLog) error {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	var errs []error
	for _, l := range apps {
		if l != nil {
			errs = append(errs, l.Close(ctx))
		}
	}
	return errors.Join(errs...)
}

// Fork starts a process whose stdout and stderr are the given descriptors
// (the write ends of two pipes) and returns its pid.
type Fork func(stdout, stderr int) (pid int, err error)

// Start runs fork with its stdout and stderr on two pipes whose read ends
// the log captures as generation gen. It returns the pid and the captured
// output; the error names app.
func (l *AppLog) Start(app string, gen int, fork Fork) (int, *Output, error) {
	var ends [4]*os.File // stdout r, w; stderr r, w
	closeAll := func() {
		for _, f := range ends {
			if f != nil {
				_ = f.Close() // unused pipe ends of a failed start
			}
		}
	}
	for i := 0; i < 4; i += 2 {
		r, w, err := Pipe()
		if err != nil {
			closeAll()
			return 0, nil, fmt.Errorf("app %s: %w", app, err)
		}
		ends[i], ends[i+1] = r, w
	}
	pid, err := fork(int(ends[1].Fd()), int(ends[3].Fd()))
	for _, w := range []*os.File{ends[1], ends[3]} {
		_ = w.Close() // the child holds its copies; ours would keep EOF away
	}
	if err != nil {
		_ = ends[0].Close() // nothing was written to a pipe of a failed start
		_ = ends[2].Close()
		return 0, nil, fmt.Errorf("app %s: %w", app, err)
	}
	return pid, l.Track(gen, ends[0], ends[2]), nil
}

// AdoptOutput captures the output pipes outFD and errFD (-1: none) a
// previous image handed over with generation gen of app; nil when none is
// left to capture. A descriptor that cannot be adopted is closed and passed
// to onErr: the generation runs on, its output on that stream is lost.
func (l *AppLog) AdoptOutput(app string, gen, outFD, errFD int, onErr func(error)) *Output {
	var files [2]*os.File
	for i, fd := range []int{outFD, errFD} {
		if fd < 0 {
			continue
		}
		f, err := Adopt(fd, fmt.Sprintf("%s generation %d %s", app, gen, Stream(i+1)))
		if err != nil {
			_ = unix.Close(fd) // unusable: reading it is what failed
			onErr(err)
			continue
		}
		files[i] = f
	}
	if files[0] == nil && files[1] == nil {
		return nil
	}
	return l.Track(gen, files[0], files[1])
}

// Output is a generation's captured stdout and stderr. A USR2 child master
// shares the pipes of the generation that forked it, so its lines' tag
// (Gen) may be an earlier generation than the one holding the output.
type Output struct {
	log     *AppLog
	gen     int
	capture *Capture
}

// Gen is the generation the output's lines are tagged with.
func (o *Output) Gen() int { return o.gen }

// Done is closed once the capture has ended (both streams at EOF, or closed).
func (o *Output) Done() <-chan struct{} { return o.capture.Done() }

// FDs returns the read ends to hand over to a successor image (-1: none).
func (o *Output) FDs() (stdout, stderr int) { return o.capture.FDs() }

// Texts returns the text of the output's lines matching q.
func (o *Output) Texts(q Query) []string {
	q.Gen = o.gen
	return Texts(o.log.Lines(q))
}

// Texts returns the text of each of lines.
func Texts(lines []Line) []string {
	out := make([]string, len(lines))
	for i := range lines {
		out[i] = lines[i].Text
	}
	return out
}
