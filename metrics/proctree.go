package metrics

import (
	"errors"
	"fmt"
	"io/fs"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/proc"
)

// userHZ is the unit of the times in /proc/<pid>/stat. Linux fixes USER_HZ
// at 100 on every architecture the supervisor runs on (procfs assumes it too).
const userHZ = 100

// treeUsage is the resource use of one process tree.
type treeUsage struct {
	cpuSeconds float64
	rssBytes   int
	fds        int
	processes  int
}

// usage sums the tree rooted at pid, read through t (one scrape's pass).
// ok is false when pid was not found (the master exited). CPU time includes
// cutime/cstime, the time of descendants already reaped inside the tree, so
// the counter does not drop when Gunicorn replaces a worker. fail is told
// about unexpected read errors.
func usage(t *proc.Tree, pid int, fail func(string, error)) (u treeUsage, ok bool) {
	if _, ok := t.Stat(pid); !ok {
		return u, false
	}
	stack := []int{pid}
	seen := make(map[int]bool)
	for len(stack) > 0 {
		p := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[p] {
			continue
		}
		seen[p] = true
		st, ok := t.Stat(p)
		if !ok {
			continue // exited since its parent listed it
		}
		u.processes++
		u.cpuSeconds += float64(st.UTime+st.STime) / userHZ
		u.cpuSeconds += float64(st.CUTime+st.CSTime) / userHZ
		u.rssBytes += st.ResidentMemory()
		pr, _ := t.Proc(p) // present: Stat found it
		n, err := pr.FileDescriptorsLen()
		switch {
		case err == nil:
			u.fds += n
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ESRCH):
			// Exited since the scan.
		default:
			fail("procfs", fmt.Errorf("count fds of pid %d: %w", p, err))
		}
		stack = append(stack, t.Children(p)...)
	}
	return u, true
}
