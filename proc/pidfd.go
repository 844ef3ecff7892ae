package proc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// TakeSockets copies into the calling process every socket descriptor of
// process pid for which want returns true, through pidfd_open and
// pidfd_getfd(2) (Linux 5.6+, and ptrace rights over pid: root, or the same
// user without Yama restrictions). want gets a CLOEXEC copy it may inspect;
// the copies it rejects are closed. Each socket is offered once, however
// many of pid's descriptors refer to it. The returned descriptors are
// CLOEXEC; pid keeps its own. A descriptor closed meanwhile is skipped; on
// any other pidfd_getfd failure (no ptrace rights, an old kernel) it
// returns the descriptors kept so far with the error.
func TakeSockets(pid int, want func(fd int) bool) ([]int, error) {
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	defer unix.Close(pidfd)
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list descriptors of %d: %w", pid, err)
	}
	seen := map[string]bool{}
	var out []int
	for _, e := range entries {
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.HasPrefix(target, "socket:") || seen[target] {
			continue // closed meanwhile, or not a socket, or offered already
		}
		seen[target] = true
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, n, 0)
		if errors.Is(err, unix.EBADF) {
			continue // closed since the listing
		}
		if err != nil {
			return out, fmt.Errorf("pidfd_getfd %d of process %d: %w", n, pid, err)
		}
		if want(fd) {
			out = append(out, fd)
			continue
		}
		unix.Close(fd)
	}
	return out, nil
}

// StartTime returns pid's start time in clock ticks since boot (field 22
// of /proc/PID/stat): with the pid, it names one process across pid reuse.
func StartTime(pid int) (uint64, error) {
	st, err := ReadStat(pid)
	if err != nil {
		return 0, err
	}
	return st.Starttime, nil
}

// PIDs returns every process, in ascending order. A tree that has not read
// every process yet (NewTree) does so first, once.
func (t *Tree) PIDs() []int {
	if !t.full {
		_ = t.scanAll() // an unreadable /proc leaves the processes read so far
	}
	out := make([]int, 0, len(t.stats))
	for pid := range t.stats {
		out = append(out, pid)
	}
	slices.Sort(out)
	return out
}

// HasEnv reports whether pid's environment as it started (its
// /proc/PID/environ) holds the entry kv ("NAME=value"); false when it
// cannot be read.
func HasEnv(pid int, kv string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return false
	}
	return slices.Contains(strings.Split(string(b), "\x00"), kv)
}
