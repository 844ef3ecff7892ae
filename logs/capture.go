package logs

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pipe returns a pipe for one output stream of a child. r, the read end, is
// non-blocking, so reading it goes through the runtime poller and a quiet
// child costs no OS thread. w, the write end, stays blocking, as a child
// expects of its stdout: the caller installs it in the child and closes its
// own copy once the child is started. Both ends are close-on-exec.
func Pipe() (r, w *os.File, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, nil, fmt.Errorf("output pipe: %w", err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		_ = unix.Close(p[0]) // the pipe is unusable: nothing else to report
		_ = unix.Close(p[1])
		return nil, nil, fmt.Errorf("output pipe: non-blocking read end: %w", err)
	}
	return os.NewFile(uintptr(p[0]), "output pipe"), os.NewFile(uintptr(p[1]), "output pipe (write)"), nil
}

// Adopt wraps fd, the read end of an output pipe inherited from a previous
// supervisor process, for Attach: it is made non-blocking and close-on-exec.
func Adopt(fd int, name string) (*os.File, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, fmt.Errorf("adopt output fd %d (%s): %w", fd, name, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
		return nil, fmt.Errorf("adopt output fd %d (%s): close-on-exec: %w", fd, name, err)
	}
	return os.NewFile(uintptr(fd), name), nil
}

// Capture is the reading of one generation's output streams.
type Capture struct {
	done      chan struct{}
	files     []*os.File
	fds       [2]int
	closeOnce sync.Once
}

// Done is closed once every stream reached EOF (every writer closed it) or
// was closed by Close, and all lines read were handed to the ring and the
// sink queue.
func (c *Capture) Done() <-chan struct{} { return c.done }

// FDs returns the descriptor numbers of the stdout and stderr read ends (-1
// for a stream not captured), for handing them to a successor process. The
// descriptors stay valid until Done is closed.
func (c *Capture) FDs() (stdout, stderr int) { return c.fds[0], c.fds[1] }

// Close stops reading now; lines not yet read are lost. Done is closed soon
// after. Safe to call more than once.
func (c *Capture) Close() error {
	var errs []error
	c.closeOnce.Do(func() {
		for _, f := range c.files {
			if err := f.Close(); err != nil && !errors.Is(err, os.ErrClosed) {
				errs = append(errs, fmt.Errorf("close %s: %w", f.Name(), err))
			}
		}
	})
	return errors.Join(errs...)
}

// fdOf returns f's descriptor without switching it to blocking mode (which
// os.File.Fd would do).
func fdOf(f *os.File) int {
	fd := -1
	rc, err := f.SyscallConn()
	if err != nil {
		return -1
	}
	_ = rc.Control(func(u uintptr) { fd = int(u) }) // an error means closed: -1 says so
	return fd
}

// readBufs holds read buffers, taken only while a read has data, so that an
// idle capture holds no buffer.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// stream reads one output stream until EOF or Close, publishing its lines.
type stream struct {
	app   *App
	f     *os.File
	tmpl  Line // App, Gen and Stream of every line
	split splitter
	batch []Line
	now   time.Time
}

func (s *stream) run() {
	rc, err := s.f.SyscallConn()
	if err != nil {
		s.notice("output not readable: " + err.Error())
		return
	}
	for s.readOnce(rc) {
	}
	s.now = time.Now()
	s.split.flush(s.emit)
	s.publish()
}

// readOnce waits for data through the poller, reads once and publishes the
// lines completed. It returns false at EOF, after Close, or on a read error
// (which is published as a notice).
func (s *stream) readOnce(rc syscall.RawConn) bool {
	var n int
	var rerr error
	var bp *[]byte
	err := rc.Read(func(fd uintptr) bool {
		bp = readBufs.Get().(*[]byte)
		n, rerr = rawRead(int(fd), *bp)
		if rerr == unix.EAGAIN {
			readBufs.Put(bp)
			bp = nil
			return false
		}
		return true
	})
	if bp != nil {
		defer readBufs.Put(bp)
	}
	switch {
	case errors.Is(err, os.ErrClosed):
		return false
	case err != nil:
		s.notice("output read failed: " + err.Error())
		return false
	case rerr == unix.EINTR:
		return true
	case rerr != nil:
		s.notice("output read failed: " + rerr.Error())
		return false
	case n <= 0:
		return false
	}
	s.now = time.Now()
	s.split.feed((*bp)[:n], s.emit)
	s.publish()
	return true
}

// rawRead is read(2) on a non-blocking descriptor, made without telling the
// Go scheduler that a system call begins: such a read never blocks, and
// announcing it would wake the runtime's monitor thread whenever the
// process was idle before, a context switch per read. p must not be empty.
func rawRead(fd int, p []byte) (int, error) {
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// notice publishes a supervisor line about this stream.
func (s *stream) notice(text string) {
	l := s.tmpl
	l.Time, l.Stream, l.Text = time.Now(), Notice, s.tmpl.Stream.String()+": "+text
	s.app.publish([]Line{l})
}

func (s *stream) emit(text []byte, part int, more bool) {
	l := s.tmpl
	l.Time, l.Text, l.Part, l.More = s.now, string(text), part, more
	s.batch = append(s.batch, l)
}

func (s *stream) publish() {
	if len(s.batch) == 0 {
		return
	}
	s.app.publish(s.batch)
	clear(s.batch)
	s.batch = s.batch[:0]
}
