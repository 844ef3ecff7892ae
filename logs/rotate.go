package logs

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/safefile"
)

// backupTime is the layout of the time in a rotated file's name (UTC).
const backupTime = "2006-01-02T15-04-05.000"

// gzSuffix ends the name of a compressed rotated file.
const gzSuffix = ".gz"

// backupName returns the name of log file name rotated at t: NAME-TIME.EXT.
func backupName(name string, t time.Time) string {
	ext := filepath.Ext(name)
	return strings.TrimSuffix(name, ext) + "-" + t.UTC().Format(backupTime) + ext
}

// backupOf returns the rotation time of file (a rotated file of log file
// name, compressed or not) and whether it is one.
func backupOf(name, file string) (time.Time, bool) {
	ext := filepath.Ext(name)
	prefix := strings.TrimSuffix(name, ext) + "-"
	stamp, ok := strings.CutPrefix(strings.TrimSuffix(file, gzSuffix), prefix)
	if !ok {
		return time.Time{}, false
	}
	stamp, ok = strings.CutSuffix(stamp, ext)
	if !ok {
		return time.Time{}, false
	}
	t, err := time.Parse(backupTime, stamp)
	return t, err == nil
}

// mill removes the rotated files beyond MaxFiles and compresses the others
// (with Compress) in one background goroutine at a time, relative to a
// duplicate of the log file's directory descriptor.
type mill struct {
	opts    *FileOptions
	mu      sync.Mutex
	running bool
	again   bool
	// dir is the directory to work in next; the goroutine owns it.
	dir *os.File
}

// kick starts the goroutine on dir (duplicated), or has the running one go
// over the files again when it is done.
func (m *mill) kick(dir *os.File, path string) {
	if m.opts.MaxFiles == 0 && !m.opts.Compress {
		return
	}
	fd, err := unix.FcntlInt(dir.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		m.report(fmt.Errorf("log file %s: rotated files: %w", path, err))
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dir != nil {
		_ = m.dir.Close() // a read-only directory replaced by a newer one
	}
	m.dir = os.NewFile(uintptr(fd), filepath.Dir(path))
	if m.running {
		m.again = true
		return
	}
	m.running = true
	go m.run(path)
}

func (m *mill) run(path string) {
	for {
		m.mu.Lock()
		dir := m.dir
		m.dir, m.again = nil, false
		m.mu.Unlock()
		if err := m.work(dir, path); err != nil {
			m.report(err)
		}
		_ = dir.Close() // read-only directory
		m.mu.Lock()
		if !m.again {
			m.running = false
			m.mu.Unlock()
			return
		}
		m.mu.Unlock()
	}
}

func (m *mill) report(err error) {
	if m.opts.OnError != nil {
		m.opts.OnError(err)
	}
}

// work removes and compresses the rotated files of path in dir.
func (m *mill) work(dir *os.File, path string) error {
	backups, err := listBackups(dir, filepath.Base(path))
	if err != nil {
		return fmt.Errorf("log file %s: list rotated files: %w", path, err)
	}
	var errs []error
	keep := backups
	if n := m.opts.MaxFiles; n > 0 && len(backups) > n {
		keep = backups[:n]
		for _, b := range backups[n:] {
			for _, f := range b.files {
				if err := unix.Unlinkat(int(dir.Fd()), f, 0); err != nil && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("log file %s: remove %s: %w", path, f, err))
				}
			}
		}
	}
	if m.opts.Compress {
		for _, b := range keep {
			if !b.compressed() {
				errs = append(errs, compress(dir, filepath.Join(filepath.Dir(path), b.plain), b.plain))
			}
		}
	}
	return errors.Join(errs...)
}

// backup is one rotation's files: plain is NAME-TIME.EXT; files lists which
// of it and its .gz exist.
type backup struct {
	t     time.Time
	plain string
	files []string
}

func (b backup) compressed() bool {
	return slices.Contains(b.files, b.plain+gzSuffix) && !slices.Contains(b.files, b.plain)
}

// listBackups returns the rotated files of log file name in dir, newest
// first.
func listBackups(dir *os.File, name string) ([]backup, error) {
	fd, err := unix.Openat(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	d := os.NewFile(uintptr(fd), dir.Name())
	defer func() { _ = d.Close() }() // read-only directory
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	byTime := map[time.Time]*backup{}
	for _, f := range names {
		t, ok := backupOf(name, f)
		if !ok {
			continue
		}
		b := byTime[t]
		if b == nil {
			b = &backup{t: t, plain: strings.TrimSuffix(f, gzSuffix)}
			byTime[t] = b
		}
		b.files = append(b.files, f)
	}
	out := make([]backup, 0, len(byTime))
	for _, b := range byTime {
		out = append(out, *b)
	}
	slices.SortFunc(out, func(a, b backup) int { return b.t.Compare(a.t) })
	return out, nil
}

// compress gzips the rotated file name in dir into name.gz, with its mode
// and owner, and removes it; path names it in errors. A partial .gz is
// removed.
func compress(dir *os.File, path, name string) error {
	src, err := safefile.OpenAt(dir, path, name, unix.O_RDONLY, 0, nil)
	if err != nil {
		return fmt.Errorf("log file: compress: %w", err)
	}
	defer func() { _ = src.Close() }() // read only
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return fmt.Errorf("log file %s: compress: stat: %w", path, err)
	}
	gz := name + gzSuffix
	dst, err := safefile.OpenAt(dir, path+gzSuffix, gz, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, st.Mode&0o777, nil)
	if err != nil {
		return fmt.Errorf("log file: compress: %w", err)
	}
	if err := gzipTo(dst, src, &st); err != nil {
		_ = dst.Close()                         // being removed
		_ = unix.Unlinkat(int(dir.Fd()), gz, 0) // partial: the plain file stays
		return fmt.Errorf("log file %s: compress: %w", path, err)
	}
	if err := unix.Unlinkat(int(dir.Fd()), name, 0); err != nil {
		return fmt.Errorf("log file %s: remove after compressing: %w", path, err)
	}
	return nil
}

// gzipTo writes src gzipped to dst, gives dst the owner in st, and closes
// dst.
func gzipTo(dst, src *os.File, st *unix.Stat_t) error {
	if err := unix.Fchown(int(dst.Fd()), int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("give uid %d: %w", st.Uid, err)
	}
	zw := gzip.NewWriter(dst)
	if _, err := io.Copy(zw, src); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return dst.Close()
}
