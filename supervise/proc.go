package supervise

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// procInfo is what the supervisor needs of /proc/PID/stat.
type procInfo struct {
	PID, PPID, PGID int
	State           byte
}

// readProc reads /proc/PID/stat. The comm field may hold spaces and
// parentheses, so fields are counted after the last ')'.
func readProc(pid int) (procInfo, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procInfo{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 3 {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: malformed", pid)
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	if err := errors.Join(err1, err2); err != nil {
		return procInfo{}, fmt.Errorf("/proc/%d/stat: %w", pid, err)
	}
	return procInfo{PID: pid, PPID: ppid, PGID: pgid, State: f[0][0]}, nil
}

// scanProcs reads every process in /proc once. Processes that vanish while
// being read are skipped.
func scanProcs() ([]procInfo, error) {
	d, err := os.Open("/proc")
	if err != nil {
		return nil, fmt.Errorf("open /proc: %w", err)
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("read /proc: %w", err)
	}
	out := make([]procInfo, 0, len(names))
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil {
			continue
		}
		p, err := readProc(pid)
		if err != nil {
			continue
		}
		out = append(out, p)
	}
	return out, nil
}

// childrenOf returns the live (non-zombie) children of pid.
func childrenOf(procs []procInfo, pid int) []int {
	var out []int
	for _, p := range procs {
		if p.PPID == pid && p.State != 'Z' {
			out = append(out, p.PID)
		}
	}
	return out
}

// descendantsOf returns every live descendant of pid (not pid itself).
func descendantsOf(procs []procInfo, pid int) []int {
	kids := make(map[int][]int)
	for _, p := range procs {
		if p.State != 'Z' {
			kids[p.PPID] = append(kids[p.PPID], p.PID)
		}
	}
	var out []int
	queue := []int{pid}
	seen := map[int]bool{pid: true}
	for len(queue) > 0 {
		q := queue[0]
		queue = queue[1:]
		for _, c := range kids[q] {
			if !seen[c] {
				seen[c] = true
				out = append(out, c)
				queue = append(queue, c)
			}
		}
	}
	return out
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	p, err := readProc(pid)
	return err == nil && p.State != 'Z'
}

// signalTree sends sig to pid and every descendant of it. Errors for
// processes that are already gone are ignored: they are what we wanted.
func signalTree(pid int, sig unix.Signal) {
	procs, err := scanProcs()
	if err == nil {
		for _, c := range descendantsOf(procs, pid) {
			_ = unix.Kill(c, sig) // ESRCH: already gone
		}
	}
	_ = unix.Kill(pid, sig) // ESRCH: already gone
}

// childPIDs lists pid's live children from the children files of its
// threads: a few small reads instead of a scan of every process. ok is false
// when the kernel has no such files (CONFIG_PROC_CHILDREN off): scan instead.
func childPIDs(pid int) (kids []int, ok bool) {
	dir := "/proc/" + strconv.Itoa(pid) + "/task"
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return nil, true // gone: no children
	}
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/children")
		if err != nil {
			if os.IsNotExist(err) && processAlive(pid) {
				if _, serr := os.Stat(dir + "/" + t.Name()); serr == nil {
					return nil, false
				}
			}
			continue
		}
		for _, f := range bytes.Fields(b) {
			if n, err := strconv.Atoi(string(f)); err == nil {
				if p, err := readProc(n); err == nil && p.State != 'Z' {
					kids = append(kids, n)
				}
			}
		}
	}
	return kids, true
}
