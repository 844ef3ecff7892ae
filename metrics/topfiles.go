package metrics

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// topFileLimit bounds the descriptors a topFiles keeps open; files beyond
// it are opened, read and closed each time.
const topFileLimit = 1024

// topFileMissing is how long a file found missing is taken as missing
// without trying again (a cgroup controller not enabled stays so).
const topFileMissing = 30 * time.Second

// topFileIdle is how long a topFiles keeps its descriptors after its last
// read: `supctl top` reads every second or so; once it quits they close.
const topFileIdle = 10 * time.Second

// topFiles reads the small kernel-generated files top needs every second
// (/proc/PID/stat, /proc/PID/task/PID/children, a cgroup's cpu.stat) with
// one pread(2) each: it keeps them open, and the kernel generates such a
// file afresh on a read at offset 0. A descriptor whose process exited
// fails to read (ESRCH) and is reopened, which also follows a reused pid.
// Descriptors not read during a round (see begin) are closed at its end
// (see end), all of them once no round began for topFileIdle. Safe for
// concurrent use; rounds run one at a time.
type topFiles struct {
	mu   sync.Mutex
	fds  map[string]int
	read map[string]bool
	// missing holds when each path was found missing (ENOENT).
	missing map[string]time.Time
	buf     []byte
	idle    *time.Timer
	round   sync.Mutex
}

// begin starts a round of reads; end must follow.
func (f *topFiles) begin() {
	f.round.Lock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fds == nil {
		f.fds, f.read, f.missing = map[string]int{}, map[string]bool{}, map[string]time.Time{}
	}
	clear(f.read)
}

// end closes the descriptors the round did not read and arms the idle
// close.
func (f *topFiles) end() {
	defer f.round.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	for path, fd := range f.fds {
		if !f.read[path] {
			_ = unix.Close(fd) // read-only: nothing to flush
			delete(f.fds, path)
		}
	}
	for path, at := range f.missing {
		if time.Since(at) >= topFileMissing {
			delete(f.missing, path)
		}
	}
	if f.idle == nil {
		f.idle = time.AfterFunc(topFileIdle, f.closeAll)
	} else {
		f.idle.Reset(topFileIdle)
	}
}

// closeAll closes every descriptor kept.
func (f *topFiles) closeAll() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for path, fd := range f.fds {
		_ = unix.Close(fd) // read-only: nothing to flush
		delete(f.fds, path)
	}
}

// get returns the contents of path, valid until the next get; called
// within a round. stable: a missing path stays missing for a while (a
// cgroup controller's file), and is not looked for again during
// topFileMissing; not for /proc/PID files, whose pid may be reused.
func (f *topFiles) get(path string, stable bool) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.read[path] = true
	if fd, ok := f.fds[path]; ok {
		b, err := f.pread(fd)
		if err == nil {
			return b, nil
		}
		_ = unix.Close(fd) // gone (ESRCH) or failing: reopened below
		delete(f.fds, path)
	}
	if at, ok := f.missing[path]; ok && time.Since(at) < topFileMissing {
		return nil, fmt.Errorf("open %s: %w", path, unix.ENOENT)
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		if stable && errors.Is(err, unix.ENOENT) && len(f.missing) < topFileLimit {
			f.missing[path] = time.Now()
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	delete(f.missing, path)
	b, err := f.pread(fd)
	if err != nil || len(f.fds) >= topFileLimit {
		_ = unix.Close(fd) // read-only: nothing to flush
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		return b, nil
	}
	f.fds[path] = fd
	return b, nil
}

// pread reads fd's whole contents from offset 0 into f.buf, growing it
// for a file that fills it.
func (f *topFiles) pread(fd int) ([]byte, error) {
	if f.buf == nil {
		f.buf = make([]byte, 4096)
	}
	for {
		n, err := unix.Pread(fd, f.buf, 0)
		if err != nil {
			return nil, err
		}
		if n < len(f.buf) {
			return f.buf[:n], nil
		}
		f.buf = make([]byte, 2*len(f.buf))
	}
}

// procUsage is what top reads of one process in /proc/PID/stat.
type procUsage struct {
	// ticks is utime+stime+cutime+cstime, in USER_HZ.
	ticks uint64
	// rssPages is the resident set, in pages.
	rssPages uint64
	zombie   bool
}

// parseProcStat reads a /proc/PID/stat line: the fields after the command
// name (which may hold spaces and parentheses) up to rss.
func parseProcStat(b []byte) (procUsage, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procUsage{}, errors.New("stat: no command name")
	}
	fields := bytes.Fields(b[i+1:])
	// fields[0] is state (field 3); utime is field 14, rss field 24.
	const state, utime, rss = 0, 14 - 3, 24 - 3
	if len(fields) <= rss {
		return procUsage{}, fmt.Errorf("stat: %d fields after the command name", len(fields))
	}
	var u procUsage
	for k := utime; k < utime+4; k++ {
		n, err := strconv.ParseInt(string(fields[k]), 10, 64)
		if err != nil {
			return procUsage{}, fmt.Errorf("stat field %d: %w", k+3, err)
		}
		u.ticks += uint64(max(n, 0))
	}
	n, err := strconv.ParseInt(string(fields[rss]), 10, 64)
	if err != nil {
		return procUsage{}, fmt.Errorf("stat field 24: %w", err)
	}
	u.rssPages = uint64(max(n, 0))
	u.zombie = string(fields[state]) == "Z"
	return u, nil
}
