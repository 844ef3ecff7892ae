package proc

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Cgroups places each app's processes in a cgroup v2 of its own, a child of
// the supervisor's cgroup: <own cgroup>/gunisup-<pid>-<pid namespace>/<app>,
// a name a self-upgrade (same pid) finds again and that supervisors running
// as PID 1 of different containers do not share. Each generation of the app
// starts in a fresh leaf below it (Cgroup.Leaf), so that its strays end with
// it and no process is ever started into a cgroup that cgroup.kill was
// written to (the kernel SIGKILLs a child cloned with CLONE_INTO_CGROUP into
// such a cgroup on some versions, 6.18 among them).
// Every process an app starts, however it detaches (setsid, double fork),
// stays in that subtree, so counting and ending the app's processes needs no
// tree walk. No controller is enabled: membership, cgroup.kill and
// cgroup.events need none, and a cgroup without controllers may hold
// processes at every level.
//
// OpenCgroups returns an error (and the supervisor falls back to process
// groups and its child subreaper) when there is no cgroup2 mount, when the
// supervisor's cgroup is not on it, or when it cannot create cgroups there:
// not root on a host, no Delegate=yes under systemd, a read-only mount in a
// container.
type Cgroups struct {
	// Root is the directory of this supervisor's cgroups (removed by Close).
	Root string

	mu     sync.Mutex
	opened []*Cgroup
}

// Cgroup is one app's cgroup, or one generation's leaf below it.
type Cgroup struct {
	Path string
	// fd is the cgroup's directory, for CLONE_INTO_CGROUP.
	fd int
}

// Dir returns the cgroup's directory, "" for a nil Cgroup (none).
func (g *Cgroup) Dir() string {
	if g == nil {
		return ""
	}
	return g.Path
}

// OpenCgroups creates (or, after a self-upgrade, finds) the directory of
// this supervisor's app cgroups (see Cgroups), named with prefix, under the
// cgroup v2 the calling process belongs to.
// It fails, too, where clone3(2) is filtered (CloneIntoCgroup): the apps
// could not be started in their cgroups.
func OpenCgroups(prefix string) (*Cgroups, error) {
	if err := CloneIntoCgroup(); err != nil {
		return nil, err
	}
	own, err := OwnCgroup()
	if err != nil {
		return nil, err
	}
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return nil, fmt.Errorf("cgroup: pid namespace: %w", err)
	}
	ns = strings.TrimSuffix(strings.TrimPrefix(ns, "pid:["), "]")
	root := filepath.Join(own, fmt.Sprintf("%s-%d-%s", prefix, os.Getpid(), ns))
	if err := os.Mkdir(root, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cgroup: create %s: %w", root, err)
	}
	return &Cgroups{Root: root}, nil
}

// CloneIntoCgroup returns nil when clone3(2), which starts a child
// directly in its cgroup (CLONE_INTO_CGROUP), reaches the kernel, else why
// not: a seccomp filter (systemd's RestrictNamespaces= of any value makes
// clone3 fail with ENOSYS, since it cannot filter clone3's flags) or a
// kernel older than 5.7. It calls clone3 with no arguments, which the
// kernel refuses with EINVAL before creating anything.
func CloneIntoCgroup() error {
	_, _, errno := unix.Syscall(unix.SYS_CLONE3, 0, 0, 0)
	if errno == unix.EINVAL {
		return nil
	}
	return fmt.Errorf("cgroup: clone3(2) (CLONE_INTO_CGROUP) is unavailable (a seccomp filter, e.g. systemd's RestrictNamespaces=, or Linux < 5.7): %w", errno)
}

// OwnCgroup returns the directory of the cgroup v2 the calling process is
// in (the "0::" line of /proc/self/cgroup under the cgroup2 mount), or an
// error when there is none.
func OwnCgroup() (string, error) {
	mount, err := cgroup2Mount("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			dir := filepath.Join(mount, rel)
			if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err != nil {
				return "", fmt.Errorf("cgroup: own cgroup %s: %w", dir, err)
			}
			return dir, nil
		}
	}
	return "", errors.New("cgroup: no cgroup v2 entry in /proc/self/cgroup")
}

// cgroup2Mount returns the mount point of the first cgroup2 file system in
// a mountinfo file.
func cgroup2Mount(mountinfo string) (string, error) {
	f, err := os.Open(mountinfo)
	if err != nil {
		return "", fmt.Errorf("cgroup: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPER
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(pre)
		if ok && len(fields) >= 5 && strings.HasPrefix(post, "cgroup2 ") {
			return fields[4], nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("cgroup: read %s: %w", mountinfo, err)
	}
	return "", errors.New("cgroup: no cgroup2 file system is mounted")
}

// App creates (or reuses) the cgroup of app and opens it for
// CLONE_INTO_CGROUP.
func (c *Cgroups) App(app string) (*Cgroup, error) {
	p := filepath.Join(c.Root, app)
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("cgroup: create %s: %w", p, err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cgroup: open %s: %w", p, err)
	}
	g := &Cgroup{Path: p, fd: fd}
	c.mu.Lock()
	c.opened = append(c.opened, g)
	c.mu.Unlock()
	return g, nil
}

// Close ends every process left in the supervisor's cgroups (within limit)
// and removes them.
func (c *Cgroups) Close(limit time.Duration) error {
	c.mu.Lock()
	for _, g := range c.opened {
		_ = unix.Close(g.fd) // a directory descriptor: nothing to flush
	}
	c.opened = nil
	c.mu.Unlock()
	entries, err := os.ReadDir(c.Root)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cgroup: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if e.IsDir() {
			errs = append(errs, RemoveCgroup(filepath.Join(c.Root, e.Name()), limit))
		}
	}
	errs = append(errs, RemoveCgroup(c.Root, limit))
	return errors.Join(errs...)
}

// FD is the cgroup's directory descriptor (for Spec.Cgroup).
func (g *Cgroup) FD() int { return g.fd }

// Procs returns the PIDs in the cgroup and its descendants (nil when it is
// gone).
func (g *Cgroup) Procs() []int { return CgroupProcs(g.Path) }

// Kill ends every process in the cgroup and its descendants with SIGKILL
// and waits (up to limit) until none is left; it returns an error naming
// the survivors. A cgroup killed once must not be spawned into again (see
// Cgroups): spawn into a new Leaf.
func (g *Cgroup) Kill(limit time.Duration) error { return KillCgroup(g.Path, limit) }

// Clear kills every process of the cgroup's subtree (see Kill) and removes
// its descendant cgroups; the cgroup itself stays.
func (g *Cgroup) Clear(limit time.Duration) error {
	if err := KillCgroup(g.Path, limit); err != nil {
		return err
	}
	return removeBelow(g.Path, limit)
}

// Leaf creates the child cgroup name of g, fresh: a leftover of that name
// (its processes killed) is removed first, so the leaf returned was never
// killed. It is opened for CLONE_INTO_CGROUP; the caller closes it.
func (g *Cgroup) Leaf(name string) (*Cgroup, error) {
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return nil, fmt.Errorf("cgroup: leaf name %q of %s: want one path element", name, g.Path)
	}
	p := filepath.Join(g.Path, name)
	err := os.Mkdir(p, 0o755)
	if errors.Is(err, fs.ErrExist) {
		if err = RemoveCgroup(p, 5*time.Second); err == nil {
			err = os.Mkdir(p, 0o755)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("cgroup: create %s: %w", p, err)
	}
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("cgroup: open %s: %w", p, err), unix.Rmdir(p))
	}
	return &Cgroup{Path: p, fd: fd}, nil
}

// Close closes the descriptor of a cgroup from Leaf; the cgroup stays.
func (g *Cgroup) Close() error {
	if g.fd <= 0 {
		return nil
	}
	fd := g.fd
	g.fd = -1
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("cgroup: close %s: %w", g.Path, err)
	}
	return nil
}

// CgroupOf returns the cgroup v2 directory process pid is in, or an error
// when it is gone or has none.
func CgroupOf(pid int) (string, error) {
	mount, err := cgroup2Mount("/proc/self/mountinfo")
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return "", fmt.Errorf("cgroup of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rel, ok := strings.CutPrefix(line, "0::"); ok {
			return filepath.Join(mount, rel), nil
		}
	}
	return "", fmt.Errorf("cgroup of pid %d: no cgroup v2 entry", pid)
}

// CgroupProcs returns the PIDs listed in the cgroup.procs of dir and of
// every cgroup below it (nil when the cgroup is gone or unreadable).
func CgroupProcs(dir string) []int {
	b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
	if err != nil {
		return nil
	}
	var out []int
	for _, f := range strings.Fields(string(b)) {
		if n, err := strconv.Atoi(f); err == nil {
			out = append(out, n)
		}
	}
	for _, sub := range subCgroups(dir) {
		out = append(out, CgroupProcs(sub)...)
	}
	return out
}

// subCgroups lists the child cgroups of dir (none when it is unreadable).
func subCgroups(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}

// KillCgroup ends every process of the cgroup at dir, through cgroup.kill
// where the kernel has it (5.14+), else by SIGKILL to each listed process
// (repeated while new ones appear), and polls until the cgroup is empty or
// limit has passed. A missing cgroup is empty.
func KillCgroup(dir string, limit time.Duration) error {
	killFile := filepath.Join(dir, "cgroup.kill")
	useKill := unix.Access(killFile, unix.W_OK) == nil
	deadline := time.Now().Add(limit)
	for {
		left := CgroupProcs(dir)
		if len(left) == 0 {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("cgroup %s: processes %v survived SIGKILL for %s", dir, left, limit)
		}
		if useKill {
			if err := os.WriteFile(killFile, []byte("1"), 0); err != nil && !errors.Is(err, fs.ErrNotExist) {
				useKill = false
			}
		}
		if !useKill {
			for _, pid := range left {
				_ = unix.Kill(pid, unix.SIGKILL) // ESRCH: already gone
			}
		}
		time.Sleep(10 * time.Millisecond) // poll interval of the emptiness check above
	}
}

// RemoveCgroup kills what is left in the cgroup at dir and below it (see
// KillCgroup) and removes it with its descendants; a missing cgroup is not
// an error.
func RemoveCgroup(dir string, limit time.Duration) error {
	if err := KillCgroup(dir, limit); err != nil {
		return err
	}
	if err := removeBelow(dir, limit); err != nil {
		return err
	}
	return rmdirCgroup(dir, limit)
}

// removeBelow removes the (emptied) descendant cgroups of dir, deepest first.
func removeBelow(dir string, limit time.Duration) error {
	var errs []error
	for _, sub := range subCgroups(dir) {
		if err := removeBelow(sub, limit); err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, rmdirCgroup(sub, limit))
	}
	return errors.Join(errs...)
}

// rmdirCgroup removes the empty cgroup dir, retrying while a killed process
// has not left it yet (within limit).
func rmdirCgroup(dir string, limit time.Duration) error {
	// A killed process leaves the cgroup once reaped: rmdir is EBUSY until then.
	deadline := time.Now().Add(limit)
	for {
		err := unix.Rmdir(dir)
		if err == nil || errors.Is(err, unix.ENOENT) {
			return nil
		}
		if !errors.Is(err, unix.EBUSY) || !time.Now().Before(deadline) {
			return fmt.Errorf("cgroup: remove %s: %w", dir, err)
		}
		time.Sleep(10 * time.Millisecond) // poll interval of the rmdir retry
	}
}
