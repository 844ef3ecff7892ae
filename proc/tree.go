package proc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// Tree reads processes from a /proc mount for one pass (one scrape, one
// signal sweep): each process's stat is read at most once per Tree. It walks
// trees down from a root through /proc/PID/task/TID/children, so a pass reads
// only the processes it asks about; where the kernel lacks those files
// (CONFIG_PROC_CHILDREN off) it falls back to one scan of every process.
// Processes that exit during a pass are left out, never an error. A Tree is
// not safe for concurrent use.
type Tree struct {
	fs       procfs.FS
	root     string
	procs    map[int]procfs.Proc
	stats    map[int]procfs.ProcStat
	children map[int][]int
	// full is true once every process was read (the fallback).
	full bool
}

// NewTree prepares a pass over the /proc mounted at root ("" is /proc).
func NewTree(root string) (*Tree, error) {
	if root == "" {
		root = procfs.DefaultMountPoint
	}
	pfs, err := procfs.NewFS(root)
	if err != nil {
		return nil, fmt.Errorf("open procfs %q: %w", root, err)
	}
	return &Tree{fs: pfs, root: root, procs: map[int]procfs.Proc{}, stats: map[int]procfs.ProcStat{}, children: map[int][]int{}}, nil
}

// Scan reads every process of the /proc mounted at root at once.
func Scan(root string) (*Tree, error) {
	t, err := NewTree(root)
	if err != nil {
		return nil, err
	}
	return t, t.scanAll()
}

func (t *Tree) scanAll() error {
	all, err := t.fs.AllProcs()
	if err != nil {
		return fmt.Errorf("list processes in %q: %w", t.root, err)
	}
	t.children = make(map[int][]int, len(all))
	for _, p := range all {
		st, err := p.Stat()
		if err != nil {
			continue // exited between readdir and read
		}
		t.procs[p.PID] = p
		t.stats[p.PID] = st
		t.children[st.PPID] = append(t.children[st.PPID], p.PID)
	}
	t.full = true
	return nil
}

// All returns every process a Scan read, sorted (nil for a Tree that was
// not scanned whole).
func (t *Tree) All() []int {
	if !t.full {
		return nil
	}
	pids := make([]int, 0, len(t.stats))
	for pid := range t.stats {
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// Stat returns pid's stat, read once per Tree; false if pid is gone.
func (t *Tree) Stat(pid int) (procfs.ProcStat, bool) {
	if st, ok := t.stats[pid]; ok {
		return st, true
	}
	if t.full {
		return procfs.ProcStat{}, false
	}
	p, err := t.fs.Proc(pid)
	if err != nil {
		return procfs.ProcStat{}, false
	}
	st, err := p.Stat()
	if err != nil {
		return procfs.ProcStat{}, false
	}
	t.procs[pid] = p
	t.stats[pid] = st
	return st, true
}

// Proc returns pid's procfs handle (after Stat found it); false if gone.
func (t *Tree) Proc(pid int) (procfs.Proc, bool) {
	if _, ok := t.Stat(pid); !ok {
		return procfs.Proc{}, false
	}
	return t.procs[pid], true
}

// Children returns pid's children, zombies included: from the full scan, or
// from the children files of its threads.
func (t *Tree) Children(pid int) []int {
	if t.full {
		return t.children[pid]
	}
	if c, ok := t.children[pid]; ok {
		return c
	}
	dir := filepath.Join(t.root, strconv.Itoa(pid), "task")
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil // exited
	}
	var out []int
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "children"))
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(filepath.Join(dir, task.Name())); serr == nil && t.scanAll() == nil {
				// The thread exists but has no children file: no CONFIG_PROC_CHILDREN.
				return t.children[pid]
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

// LiveChildren returns pid's children that are not zombies.
func (t *Tree) LiveChildren(pid int) []int {
	var out []int
	for _, c := range t.Children(pid) {
		if st, ok := t.Stat(c); ok && st.State != "Z" {
			out = append(out, c)
		}
	}
	return out
}

// Descendants returns every live descendant of pid (not pid itself),
// parents before their children.
func (t *Tree) Descendants(pid int) []int {
	var out []int
	seen := map[int]bool{pid: true}
	queue := []int{pid}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		for _, c := range t.LiveChildren(q) {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// ReadStat reads /proc/PID/stat of the host's /proc.
func ReadStat(pid int) (procfs.ProcStat, error) {
	p, err := procfs.NewProc(pid)
	if err != nil {
		return procfs.ProcStat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	st, err := p.Stat()
	if err != nil {
		return procfs.ProcStat{}, fmt.Errorf("pid %d: %w", pid, err)
	}
	return st, nil
}

// Alive reports whether pid exists and is not a zombie.
func Alive(pid int) bool {
	st, err := ReadStat(pid)
	return err == nil && st.State != "Z"
}

// Children returns the live children of pid (nil when /proc cannot be read).
func Children(pid int) []int {
	t, err := NewTree("")
	if err != nil {
		return nil
	}
	return t.LiveChildren(pid)
}

// SignalTree sends sig to every live descendant of pid, then to pid.
// Processes that are already gone are what was wanted: not an error.
func SignalTree(pid int, sig unix.Signal) {
	if t, err := NewTree(""); err == nil {
		for _, c := range t.Descendants(pid) {
			_ = unix.Kill(c, sig) // ESRCH: already gone
		}
	}
	_ = unix.Kill(pid, sig) // ESRCH: already gone
}
