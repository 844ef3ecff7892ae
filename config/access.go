package config

import (
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
)

// runner is who executes an app's commands: the mode bits of a command and
// of the directories above it are checked for this uid and these gids,
// the way the kernel checks an exec (ACLs and capabilities other than
// root's are not considered).
type runner struct {
	uid  int
	gids []int // the primary gid and the supplementary groups
	// who names the runner in messages: `user "www"`, or "the supervisor's user".
	who string
}

// runnerOf is who runs a's processes: its Identity when it switches
// credentials, else the supervisor's own effective ids and groups.
func runnerOf(a *App) runner {
	id := a.Identity
	if id.Switch() {
		r := runner{uid: id.UID, gids: append([]int{id.GID}, id.Groups...)}
		r.who = fmt.Sprintf("uid %d", id.UID)
		if id.User != "" {
			r.who = fmt.Sprintf("user %q", id.User)
		}
		return r
	}
	gids, err := os.Getgroups()
	if err != nil {
		gids = nil // the primary gid alone is then checked
	}
	return runner{uid: os.Geteuid(), gids: append([]int{os.Getegid()}, gids...), who: "the supervisor's user"}
}

// errNoAccess is wrapped by canExec's errors about permissions.
var errNoAccess = errors.New("permission denied")

// canExec reports whether r may execute path: search permission on every
// directory from / down to path, both as written and with its symlinks
// resolved, and an execute bit for r on the regular file it names.
func (r runner) canExec(path string) error {
	if err := CheckExecutable(path); err != nil {
		return err
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, pathErr(err))
	}
	for _, p := range []string{path, real} {
		if err := r.canSearch(filepath.Dir(p)); err != nil {
			return fmt.Errorf("%s cannot execute %s: %w", r.who, path, err)
		}
	}
	fi, err := os.Stat(real)
	if err != nil {
		return fmt.Errorf("%s: %v", path, pathErr(err))
	}
	if !r.allowed(fi, 0o1) {
		return fmt.Errorf("%s cannot execute %s: no execute permission for it (mode %04o%s): %w", r.who, path, fi.Mode().Perm(), owners(fi), errNoAccess)
	}
	return nil
}

// canSearch requires search (x) permission for r on dir and each of its
// ancestors (symlinks among them followed by stat).
func (r runner) canSearch(dir string) error {
	dir = filepath.Clean(dir)
	for {
		fi, err := os.Stat(dir)
		if err != nil {
			return fmt.Errorf("%s: %v", dir, pathErr(err))
		}
		if !r.allowed(fi, 0o1) {
			return fmt.Errorf("no search permission on %s (mode %04o%s): %w", dir, fi.Mode().Perm(), owners(fi), errNoAccess)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil
		}
		dir = parent
	}
}

// allowed reports whether r has the permission bit (4 read, 2 write, 1
// execute or search) on the file fi: the owner's bits when r owns it, else
// the group's when one of r's gids owns it, else the others'. Root may
// search any directory and execute a file with any execute bit.
func (r runner) allowed(fi os.FileInfo, bit os.FileMode) bool {
	perm := fi.Mode().Perm()
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case r.uid == 0:
		return fi.IsDir() || perm&0o111 != 0
	case !ok:
		return perm&bit != 0
	case int(st.Uid) == r.uid:
		return perm&(bit<<6) != 0
	case slices.Contains(r.gids, int(st.Gid)):
		return perm&(bit<<3) != 0
	}
	return perm&bit != 0
}

// lookPath finds the bare name in each directory of the supervisor's PATH
// in turn, as execvp does for r ("" and relative entries taken relative to
// the supervisor's working directory), and returns the absolute path of the
// first r may execute. When only candidates r may not execute exist, the
// error names the first and why (wrapping errNoAccess).
func (r runner) lookPath(name string) (string, error) {
	var denied error
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		cand, err := filepath.Abs(filepath.Join(cmp.Or(dir, "."), name))
		if err != nil {
			continue
		}
		if _, err := os.Stat(cand); err != nil {
			continue
		}
		err = r.canExec(cand)
		if err == nil {
			return cand, nil
		}
		if denied == nil && errors.Is(err, errNoAccess) {
			denied = err
		}
	}
	if denied != nil {
		return "", denied
	}
	return "", fmt.Errorf("%q not found", name)
}

// owners is ", owner UID, group GID" of fi, or "" when unknown.
func owners(fi os.FileInfo) string {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return ""
	}
	return fmt.Sprintf(", owner %d, group %d", st.Uid, st.Gid)
}
