package metrics

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// userHZ is the unit of the times in /proc/<pid>/stat. Linux fixes USER_HZ
// at 100 on every architecture the supervisor runs on (procfs assumes it too).
const userHZ = 100

// procTree is one scan of /proc: every process's stat line and the
// parent -> children relation, from which each app's tree is summed.
type procTree struct {
	procs    map[int]procfs.Proc
	stats    map[int]procfs.ProcStat
	children map[int][]int
}

// treeUsage is the resource use of one process tree.
type treeUsage struct {
	cpuSeconds float64
	rssBytes   int
	fds        int
	processes  int
}

// scanProcs reads /proc once: the directory and every process's stat file.
// Processes that exit during the scan are left out.
func scanProcs(root string) (*procTree, error) {
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("open procfs %q: %w", root, err)
	}
	all, err := pfs.AllProcs()
	if err != nil {
		return nil, fmt.Errorf("list processes in %q: %w", root, err)
	}
	t := &procTree{
		procs:    make(map[int]procfs.Proc, len(all)),
		stats:    make(map[int]procfs.ProcStat, len(all)),
		children: make(map[int][]int, len(all)),
	}
	for _, p := range all {
		st, err := p.Stat()
		if err != nil {
			// The process exited between readdir and read: not an error.
			continue
		}
		t.procs[p.PID] = p
		t.stats[p.PID] = st
		t.children[st.PPID] = append(t.children[st.PPID], p.PID)
	}
	return t, nil
}

// usage sums the tree rooted at pid. ok is false when pid was not found
// (the master exited). CPU time includes cutime/cstime, the time of
// descendants already reaped inside the tree, so the counter does not drop
// when Gunicorn replaces a worker. fail is told about unexpected read errors.
func (t *procTree) usage(pid int, fail func(string, error)) (u treeUsage, ok bool) {
	if _, ok := t.stats[pid]; !ok {
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
		st := t.stats[p]
		u.processes++
		u.cpuSeconds += float64(st.UTime+st.STime) / userHZ
		u.cpuSeconds += float64(st.CUTime+st.CSTime) / userHZ
		u.rssBytes += st.ResidentMemory()
		n, err := t.procs[p].FileDescriptorsLen()
		switch {
		case err == nil:
			u.fds += n
		case errors.Is(err, fs.ErrNotExist), errors.Is(err, unix.ESRCH):
			// Exited since the scan.
		default:
			fail("procfs", fmt.Errorf("count fds of pid %d: %w", p, err))
		}
		stack = append(stack, t.children[p]...)
	}
	return u, true
}
