package logs

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
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
	// Path is the log file; its directory is created if missing.
	Path string
	// MaxSizeMB is the size in MiB at which the file is rotated (the unit
	// lumberjack supports); 0 means 100.
	MaxSizeMB int
	// MaxFiles is the number of rotated files kept besides the current
	// one; 0 keeps them all.
	MaxFiles int
	// Compress gzips rotated files (in the background).
	Compress bool
}

// FileSink writes lines to a file rotated by size through lumberjack, and
// reopens it on demand for an external logrotate. Safe for concurrent use.
type FileSink struct {
	mu   sync.Mutex
	lj   *lumberjack.Logger
	path string
	max  int64
	// size is the current file's size as far as this sink knows; known is
	// false until it is read from the file after (re)opening.
	size  int64
	known bool
	// rotated is the millisecond of the last rotation.
	rotated int64
}

// NewFileSink checks that opts.Path can be opened for appending (creating
// it) and returns the sink.
func NewFileSink(opts FileOptions) (*FileSink, error) {
	if opts.Path == "" {
		return nil, errors.New("log file: no path")
	}
	if opts.MaxSizeMB < 0 || opts.MaxFiles < 0 {
		return nil, fmt.Errorf("log file %s: negative size %d or file count %d", opts.Path, opts.MaxSizeMB, opts.MaxFiles)
	}
	size := opts.MaxSizeMB
	if size == 0 {
		size = 100
	}
	lj := &lumberjack.Logger{Filename: opts.Path, MaxSize: size, MaxBackups: opts.MaxFiles, Compress: opts.Compress}
	// Writing nothing opens (or creates) the file: a path that cannot be
	// written fails here, at configuration time.
	if _, err := lj.Write(nil); err != nil {
		return nil, fmt.Errorf("log file %s: %w", opts.Path, err)
	}
	return &FileSink{lj: lj, path: opts.Path, max: int64(size) << 20}, nil
}

// Write appends p (whole lines), rotating first when p would take the file
// to its maximum size. Rotations are at least a millisecond apart: rotated
// files are named by the millisecond, and a second rotation within the same
// one would replace the first file.
func (s *FileSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.known {
		st, err := os.Stat(s.path)
		switch {
		case err == nil:
			s.size = st.Size()
		case errors.Is(err, os.ErrNotExist):
			s.size = 0
		default:
			return 0, fmt.Errorf("log file %s: %w", s.path, err)
		}
		s.known = true
	}
	if s.size > 0 && s.size+int64(len(p)) >= s.max {
		if err := s.rotate(); err != nil {
			return 0, err
		}
	}
	n, err := s.lj.Write(p)
	s.size += int64(n)
	if err != nil {
		return n, fmt.Errorf("log file %s: %w", s.path, err)
	}
	return n, nil
}

// rotate moves the current file aside under a name no earlier rotation
// used. s.mu is held.
func (s *FileSink) rotate() error {
	for {
		now := time.Now().UnixMilli()
		if now != s.rotated {
			s.rotated = now
			break
		}
		time.Sleep(time.Until(time.UnixMilli(now + 1))) // names have millisecond resolution
	}
	if err := s.lj.Rotate(); err != nil {
		return fmt.Errorf("log file %s: rotate: %w", s.path, err)
	}
	s.size = 0
	return nil
}

// Reopen closes the file; the next write opens the file found at the path
// (creating it), as an external logrotate that moved it expects.
func (s *FileSink) Reopen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known = false
	if err := s.lj.Close(); err != nil {
		return fmt.Errorf("log file %s: reopen: %w", s.path, err)
	}
	return nil
}

// Close closes the file. A later Write opens it again. Lumberjack's
// background goroutine for compression and removal of old files stays.
func (s *FileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.known = false
	if err := s.lj.Close(); err != nil {
		return fmt.Errorf("log file %s: %w", s.path, err)
	}
	return nil
}
