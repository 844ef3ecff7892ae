package logs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/safefile"
)

// WriterSink serialises the writes of several apps' writers to one
// io.Writer (the supervisor's stdout), so that their lines never interleave
// within a line. A Write that blocks holds up the other apps' writers, not
// their captures.
type WriterSink struct {
	mu sync.Mutex
	w  io.Writer
}

// NewWriterSink returns a sink writing to w.
func NewWriterSink(w io.Writer) *WriterSink { return &WriterSink{w: w} }

// Write writes p (whole lines) to the underlying writer.
func (s *WriterSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// FileOptions configure a FileSink.
type FileOptions struct {
	// Path is the log file (absolute); its directory is created if missing.
	Path string
	// MaxSizeMB is the size in MiB at which the file is rotated; 0 means
	// 100.
	MaxSizeMB int
	// MaxFiles is the number of rotated files kept besides the current
	// one; 0 keeps them all.
	MaxFiles int
	// Compress gzips rotated files (in the background).
	Compress bool
	// UID is the app's user: an existing log file must be owned by it or
	// by root.
	UID int
	// OnError, if set, is called with the errors of the background removal
	// and compression of rotated files.
	OnError func(error)
}

// logFileMode is the mode of a log file the sink creates (a rotation
// creates the next file with the mode and owner of the one it moved aside).
const logFileMode = 0o600

// FileSink appends lines to a file rotated by size, and reopens it on
// demand for an external logrotate. No operation follows a link: the
// directory is walked with package safefile and held open, and the file is
// opened (O_APPEND|O_NOFOLLOW), renamed, compressed and removed relative to
// it; an existing file must be a regular file with one link owned by root
// or the app's user. Rotated files are named NAME-TIME.EXT (TIME in UTC,
// 2006-01-02T15-04-05.000). Safe for concurrent use.
type FileSink struct {
	mu   sync.Mutex
	opts FileOptions
	max  int64
	// dir and f are the open directory and file; nil until (re)opened.
	dir *os.File
	f   *os.File
	// size is the current file's size as far as this sink knows.
	size int64
	// rotated is the millisecond of the last rotation.
	rotated int64
	mill    mill
}

// NewFileSink opens (creating) opts.Path for appending, so that a path that
// cannot be used fails at configuration time, and returns the sink. Errors
// name the path.
func NewFileSink(opts FileOptions) (*FileSink, error) {
	if opts.Path == "" {
		return nil, errors.New("log file: no path")
	}
	if opts.MaxSizeMB < 0 || opts.MaxFiles < 0 {
		return nil, fmt.Errorf("log file %s: negative size %d or file count %d", opts.Path, opts.MaxSizeMB, opts.MaxFiles)
	}
	if !filepath.IsAbs(opts.Path) {
		return nil, fmt.Errorf("log file %s: not an absolute path", opts.Path)
	}
	size := opts.MaxSizeMB
	if size == 0 {
		size = 100
	}
	s := &FileSink{opts: opts, max: int64(size) << 20}
	s.mill.opts = &s.opts
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.open(); err != nil {
		return nil, err
	}
	return s, nil
}

// open opens the directory and the file. s.mu is held.
func (s *FileSink) open() error {
	dir, err := safefile.OpenParent(s.opts.Path, true)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	f, err := safefile.OpenAt(dir, s.opts.Path, filepath.Base(s.opts.Path), unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT, logFileMode, s.ownerCheck)
	if err != nil {
		_ = dir.Close() // read-only directory
		return fmt.Errorf("log file: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		_ = f.Close() // nothing written yet
		_ = dir.Close()
		return fmt.Errorf("log file %s: stat: %w", s.opts.Path, err)
	}
	s.dir, s.f, s.size = dir, f, st.Size
	return nil
}

// ownerCheck refuses a log file owned by neither root nor the app's user.
func (s *FileSink) ownerCheck(st *unix.Stat_t) string {
	if st.Uid != 0 && int(st.Uid) != s.opts.UID {
		return fmt.Sprintf("log file is owned by uid %d, neither root nor the app's user (uid %d): refused", st.Uid, s.opts.UID)
	}
	return ""
}

// Write appends p (whole lines), rotating first when p would take the file
// to its maximum size. Rotations are at least a millisecond apart: rotated
// files are named by the millisecond.
func (s *FileSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		if err := s.open(); err != nil {
			return 0, err
		}
	}
	if s.size > 0 && s.size+int64(len(p)) >= s.max {
		if err := s.maybeRotate(int64(len(p))); err != nil {
			return 0, err
		}
	}
	n, err := s.f.Write(p)
	s.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("log file %s: %w", s.opts.Path, err)
	}
	return n, nil
}

// maybeRotate rotates unless the file turns out to be smaller than s.size
// says (truncated by a copytruncate) and has room for n more bytes.
// s.mu is held.
func (s *FileSink) maybeRotate(n int64) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(s.f.Fd()), &st); err != nil {
		return fmt.Errorf("log file %s: stat: %w", s.opts.Path, err)
	}
	s.size = st.Size
	if s.size == 0 || s.size+n < s.max {
		return nil
	}
	return s.rotate(&st)
}

// rotate moves the current file (of status st) aside under a name no
// earlier rotation used and opens a new one with its mode and owner.
// s.mu is held.
func (s *FileSink) rotate(st *unix.Stat_t) error {
	for {
		now := time.Now().UnixMilli()
		if now != s.rotated {
			s.rotated = now
			break
		}
		time.Sleep(time.Until(time.UnixMilli(now + 1))) // names have millisecond resolution
	}
	name := filepath.Base(s.opts.Path)
	backup := backupName(name, time.UnixMilli(s.rotated))
	dirfd := int(s.dir.Fd())
	var cur unix.Stat_t
	// Only the file being written is moved: the name may have been taken by
	// another file (an external logrotate, a planted link) since it was
	// opened.
	if err := unix.Fstatat(dirfd, name, &cur, unix.AT_SYMLINK_NOFOLLOW); err == nil && cur.Dev == st.Dev && cur.Ino == st.Ino {
		if err := unix.Renameat(dirfd, name, dirfd, backup); err != nil {
			return fmt.Errorf("log file %s: rotate to %s: %w", s.opts.Path, backup, err)
		}
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("log file %s: close before rotating: %w", s.opts.Path, err)
	}
	s.f = nil
	f, err := s.createNext(name, st)
	if err != nil {
		return err
	}
	s.f, s.size = f, 0
	s.mill.kick(s.dir, s.opts.Path)
	return nil
}

// createNext creates the file after a rotation with the mode and owner of
// the previous one (st), or opens the file found under its name.
// s.mu is held.
func (s *FileSink) createNext(name string, st *unix.Stat_t) (*os.File, error) {
	mode := st.Mode & 0o777
	f, err := safefile.OpenAt(s.dir, s.opts.Path, name, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_EXCL, mode, nil)
	if errors.Is(err, unix.EEXIST) {
		f, err = safefile.OpenAt(s.dir, s.opts.Path, name, unix.O_WRONLY|unix.O_APPEND, 0, s.ownerCheck)
		if err != nil {
			return nil, fmt.Errorf("log file: %w", err)
		}
		return f, nil
	}
	if err != nil {
		return nil, fmt.Errorf("log file: %w", err)
	}
	if err := unix.Fchown(int(f.Fd()), int(st.Uid), int(st.Gid)); err != nil {
		_ = f.Close() // empty: nothing written yet
		return nil, fmt.Errorf("log file %s: give the new file uid %d: %w", s.opts.Path, st.Uid, err)
	}
	if err := unix.Fchmod(int(f.Fd()), mode); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("log file %s: mode %04o: %w", s.opts.Path, mode, err)
	}
	return f, nil
}

// Reopen closes the file and opens the one found at the path (creating
// it, its directory walked again), as an external logrotate that moved it
// expects. When that fails it returns why, naming the path, and the sink
// stays closed: each later write tries to open it again.
func (s *FileSink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closeFiles(); err != nil {
		return fmt.Errorf("log file %s: reopen: %w", s.opts.Path, err)
	}
	return s.open()
}

// Close closes the file. A later Write opens it again. Removal and
// compression of rotated files already under way finish in the background.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.closeFiles(); err != nil {
		return fmt.Errorf("log file %s: %w", s.opts.Path, err)
	}
	return nil
}

// closeFiles closes the file and its directory. s.mu is held.
func (s *FileSink) closeFiles() error {
	var err error
	if s.f != nil {
		err = s.f.Close()
	}
	if s.dir != nil {
		_ = s.dir.Close() // read-only directory
	}
	s.f, s.dir = nil, nil
	return err
}
