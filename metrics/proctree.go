package metrics

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// userHZ is the unit of the times in /proc/<pid>/stat. Linux fixes USER_HZ
// at 100 on every architecture the supervisor runs on (procfs assumes it too).
const userHZ = 100

// procTree reads the process trees of one scrape. It walks each tree down
// from its root through /proc/PID/task/TID/children, so a scrape reads only
// the apps' own processes, not every process on the host; where the kernel
// lacks those files (CONFIG_PROC_CHILDREN) it falls back to one full scan.
type procTree struct {
	fs       procfs.FS
	root     string
	procs    map[int]procfs.Proc
	stats    map[int]procfs.ProcStat
	children map[int][]int
	// full is true once every process was read (the fallback).
	full bool
}

// treeUsage is the resource use of one process tree.
type treeUsage struct {
	cpuSeconds float64
	rssBytes   int
	fds        int
	processes  int
}

// newProcTree prepares a scrape's reads of /proc mounted at root.
func newProcTree(root string) (*procTree, error) {
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("open procfs %q: %w", root, err)
	}
	return &procTree{fs: pfs, root: root, procs: map[int]procfs.Proc{}, stats: map[int]procfs.ProcStat{}, children: map[int][]int{}}, nil
}

// scanProcs reads /proc once: the directory and every process's stat file.
// Processes that exit during the scan are left out.
func scanProcs(root string) (*procTree, error) {
	t, err := newProcTree(root)
	if err != nil {
		return nil, err
	}
	return t, t.scanAll()
}

func (t *procTree) scanAll() error {
	all, err := t.fs.AllProcs()
	if err != nil {
		return fmt.Errorf("list processes in %q: %w", t.root, err)
	}
	t.children = make(map[int][]int, len(all))
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
	t.full = true
	return nil
}

// load reads pid's stat (once per scrape); false if it is gone.
func (t *procTree) load(pid int) bool {
	if _, ok := t.stats[pid]; ok {
		return true
	}
	if t.full {
		return false
	}
	p, err := t.fs.Proc(pid)
	if err != nil {
		return false
	}
	st, err := p.Stat()
	if err != nil {
		return false
	}
	t.procs[pid] = p
	t.stats[pid] = st
	return true
}

// kids returns pid's children: from the full scan, or from the children
// files of its threads (falling back to a full scan when they do not exist).
func (t *procTree) kids(pid int) []int {
	if t.full {
		return t.children[pid]
	}
	if c, ok := t.children[pid]; ok {
		return c
	}
	tasks, err := os.ReadDir(filepath.Join(t.root, strconv.Itoa(pid), "task"))
	if err != nil {
		return nil // exited
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(t.root, strconv.Itoa(pid), "task", task.Name(), "children"))
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(filepath.Join(t.root, strconv.Itoa(pid), "task", task.Name())); serr == nil {
				// The thread exists but has no children file: no CONFIG_PROC_CHILDREN.
				if t.scanAll() == nil {
					return t.children[pid]
				}
			}
			continue
		}
		if err != nil {
			continue // the thread exited
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	t.children[pid] = out
	return out
}

// usage sums the tree rooted at pid. ok is false when pid was not found
// (the master exited). CPU time includes cutime/cstime, the time of
// descendants already reaped inside the tree, so the counter does not drop
// when Gunicorn replaces a worker. fail is told about unexpected read errors.
func (t *procTree) usage(pid int, fail func(string, error)) (u treeUsage, ok bool) {
	if !t.load(pid) {
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
		if !t.load(p) {
			continue // exited since its parent listed it
		}
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
		stack = append(stack, t.kids(p)...)
	}
	return u, true
}
