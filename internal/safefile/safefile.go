// Package safefile opens files on an app's behalf without following a link
// an unprivileged user could have planted.
//
// A path is walked from / one component at a time, each directory opened
// relative to the previous one with O_NOFOLLOW. A symbolic link met on the
// way is followed only when it is trusted: owned by root, in a directory
// owned by root that neither its group nor others can write (so Debian's
// /var/run -> /run works, and a link in an app's own directory does not).
// The final component is opened with O_NOFOLLOW and O_NONBLOCK (a planted
// FIFO cannot block), and the checks are made on the opened descriptor: a
// regular file with a single link, and whatever the caller's Check adds.
// Renames of the path's directories after a component was opened cannot
// redirect the walk, since every step is relative to a held descriptor.
package safefile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// maxLinks bounds the trusted symbolic links followed in one walk.
const maxLinks = 40

// Error is a refusal or failure about one path.
type Error struct {
	// Path is the path as the caller gave it.
	Path string
	// Msg says what is wrong, such as "app.log is a symbolic link".
	Msg string
	// Err is the system error behind Msg, if any.
	Err error
	// link is set when the refusal is of a final component that is a
	// symbolic link.
	link bool
}

// Error returns "PATH: MSG".
func (e *Error) Error() string { return e.Path + ": " + e.Msg }

// Unwrap returns the system error, if any.
func (e *Error) Unwrap() error { return e.Err }

// ErrRefused is what an Error refusing an unsafe file matches with
// errors.Is.
var ErrRefused = errors.New("refused")

// Is reports whether target is ErrRefused and e is a refusal (not a plain
// system error such as ENOENT).
func (e *Error) Is(target error) bool { return target == ErrRefused && e.Err == nil }

func refuse(path, format string, args ...any) *Error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...) + ": refused"}
}

func sysErr(path, what string, err error) *Error {
	return &Error{Path: path, Msg: what + ": " + err.Error(), Err: err}
}

// OpenDir opens the directory path (absolute) for use as the base of
// *at calls, walking it as the package describes; with create, missing
// directories are made with mode 0755 (before the umask). The descriptor
// is opened for reading, or is an O_PATH one where the caller may only
// search the directory. It returns an *Error naming path on failure.
func OpenDir(path string, create bool) (*os.File, error) {
	if !filepath.IsAbs(path) {
		return nil, &Error{Path: path, Msg: "not an absolute path"}
	}
	fd, err := walk(path, create)
	if err != nil {
		return nil, err
	}
	// The walk holds O_PATH descriptors, which need only search permission
	// on the way; the directory itself is opened for reading where allowed
	// (fchown, fchmod and reading its entries need that).
	rd, err := unix.Openat(fd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		_ = unix.Close(fd) // an O_PATH descriptor replaced by a readable one
		fd = rd
	}
	return os.NewFile(uintptr(fd), path), nil
}

// walk returns an O_PATH descriptor of the directory path.
func walk(path string, create bool) (int, error) {
	fd, err := unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, sysErr(path, "open /", err)
	}
	todo := components(path)
	links := 0
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		next, err := openDirAt(fd, name, create)
		if err == nil {
			_ = unix.Close(fd) // an O_PATH descriptor: nothing to flush
			fd = next
			continue
		}
		if !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENOTDIR) {
			_ = unix.Close(fd)
			return -1, sysErr(path, "open directory "+name, err)
		}
		if links++; links > maxLinks {
			_ = unix.Close(fd)
			return -1, refuse(path, "more than %d symbolic links", maxLinks)
		}
		target, err := trustedLink(path, fd, name)
		if err != nil {
			_ = unix.Close(fd)
			return -1, err
		}
		if strings.HasPrefix(target, "/") {
			_ = unix.Close(fd)
			if fd, err = unix.Open("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
				return -1, sysErr(path, "open /", err)
			}
		}
		todo = append(components(target), todo...)
	}
	return fd, nil
}

// components splits p into its names, leaving out empty ones and ".".
func components(p string) []string {
	var out []string
	for _, c := range strings.Split(p, "/") {
		if c != "" && c != "." {
			out = append(out, c)
		}
	}
	return out
}

// openDirAt opens directory name in dir without following a link (ELOOP
// or ENOTDIR for a link), making it first when create is set and it is missing.
func openDirAt(dir int, name string, create bool) (int, error) {
	const flags = unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dir, name, flags, 0)
	if errors.Is(err, unix.ENOENT) && create && name != ".." {
		if err := unix.Mkdirat(dir, name, 0o755); err != nil && !errors.Is(err, unix.EEXIST) {
			return -1, err
		}
		fd, err = unix.Openat(dir, name, flags, 0)
	}
	return fd, err
}

// trustedLink returns the target of the symbolic link name in dir if no
// user but root could have made it, and refuses it otherwise; name not
// being a link is an error saying it is not a directory.
func trustedLink(path string, dir int, name string) (string, error) {
	lfd, err := unix.Openat(dir, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", sysErr(path, "open "+name, err)
	}
	defer func() { _ = unix.Close(lfd) }() // an O_PATH descriptor: nothing to flush
	var ls, ds unix.Stat_t
	if err := unix.Fstat(lfd, &ls); err != nil {
		return "", sysErr(path, "stat "+name, err)
	}
	if err := unix.Fstat(dir, &ds); err != nil {
		return "", sysErr(path, "stat the directory of "+name, err)
	}
	if ls.Mode&unix.S_IFMT != unix.S_IFLNK {
		return "", &Error{Path: path, Msg: name + " is not a directory", Err: unix.ENOTDIR}
	}
	if ls.Uid != 0 || ds.Uid != 0 || ds.Mode&0o022 != 0 {
		return "", refuse(path, "%s is a symbolic link that a user other than root could have made (link uid %d, directory uid %d mode %04o)", name, ls.Uid, ds.Uid, ds.Mode&0o7777)
	}
	buf := make([]byte, unix.PathMax)
	n, err := unix.Readlinkat(lfd, "", buf)
	if err != nil {
		return "", sysErr(path, "read link "+name, err)
	}
	return string(buf[:n]), nil
}

// Check inspects the status of an opened regular file with a single link
// and returns why it may not be used (the message of the Error, which
// should say "refused"), or "".
type Check func(st *unix.Stat_t) string

// Open opens the file path (absolute) with flag (O_RDONLY, O_WRONLY,
// O_RDWR, O_APPEND, O_CREAT, O_EXCL; O_NOFOLLOW, O_NONBLOCK and O_CLOEXEC
// are added), creating it with perm. Its directory is walked as the package
// describes (made with createDirs). The opened descriptor must be a regular
// file with one link and pass check (nil: no more checks); otherwise it is
// closed and an *Error naming path is returned. O_NONBLOCK is cleared on
// the returned file.
func Open(path string, flag int, perm uint32, createDirs bool, check Check) (*os.File, error) {
	dir, err := OpenParent(path, createDirs)
	if err != nil {
		return nil, err
	}
	defer func() { _ = dir.Close() }() // a directory opened read-only
	return OpenAt(dir, path, filepath.Base(path), flag, perm, check)
}

// OpenRead opens the file path (absolute) for reading as Open does, except
// that a final symbolic link is followed when it is trusted (owned by root,
// in a directory owned by root that neither its group nor others can
// write), as links on the way are: a root-managed link such as a
// Kubernetes ConfigMap's works, one the app's user made is refused.
func OpenRead(path string, check Check) (*os.File, error) {
	cur := path
	for links := 0; ; links++ {
		dir, err := OpenParent(cur, false)
		if err != nil {
			return nil, renamed(err, path)
		}
		f, err := OpenAt(dir, path, filepath.Base(cur), unix.O_RDONLY, 0, check)
		var e *Error
		if err == nil || !errors.As(err, &e) || !e.link {
			_ = dir.Close() // a directory opened read-only
			return f, err
		}
		if links >= maxLinks {
			_ = dir.Close()
			return nil, refuse(path, "more than %d symbolic links", maxLinks)
		}
		target, err := trustedLink(path, int(dir.Fd()), filepath.Base(cur))
		_ = dir.Close()
		if err != nil {
			return nil, err
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(cur), target)
		}
		cur = target
	}
}

// renamed returns err with an *Error's Path set to path.
func renamed(err error, path string) error {
	var e *Error
	if errors.As(err, &e) {
		e.Path = path
	}
	return err
}

// OpenParent is OpenDir of the directory of path, its errors naming path.
func OpenParent(path string, create bool) (*os.File, error) {
	dir, err := OpenDir(filepath.Dir(path), create)
	if err != nil {
		return nil, renamed(err, path)
	}
	return dir, nil
}

// OpenAt is Open of name in the directory dir (as OpenDir returns);
// path names the file in errors.
func OpenAt(dir *os.File, path, name string, flag int, perm uint32, check Check) (*os.File, error) {
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, &Error{Path: path, Msg: fmt.Sprintf("%q is not a file name", name)}
	}
	fd, err := unix.Openat(int(dir.Fd()), name, flag|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, perm)
	switch {
	case errors.Is(err, unix.ELOOP):
		e := refuse(path, "%s is a symbolic link", name)
		e.link = true
		return nil, e
	case errors.Is(err, unix.EISDIR):
		return nil, refuse(path, "%s is a directory", name)
	case errors.Is(err, unix.ENXIO):
		return nil, refuse(path, "%s is a FIFO or socket", name)
	case err != nil:
		return nil, sysErr(path, "open", err)
	}
	f := os.NewFile(uintptr(fd), path)
	if err := checkFile(f, path, name, check); err != nil {
		_ = f.Close() // refused before any byte was read or written
		return nil, err
	}
	return f, nil
}

// checkFile checks the descriptor of f and makes it blocking.
func checkFile(f *os.File, path, name string, check Check) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return sysErr(path, "stat", err)
	}
	if msg := Inspect(&st, name, check); msg != "" {
		return &Error{Path: path, Msg: msg}
	}
	if err := unix.SetNonblock(int(f.Fd()), false); err != nil {
		return sysErr(path, "clear O_NONBLOCK", err)
	}
	return nil
}

// Inspect returns why a file of status st, named name, may not be used:
// not a regular file, more than one link (these end in ": refused"), or
// check's reason as it is; "" if none.
func Inspect(st *unix.Stat_t, name string, check Check) string {
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFDIR:
		return name + " is a directory: refused"
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return name + " is not a regular file: refused"
	case st.Nlink != 1:
		return fmt.Sprintf("%s has %d hard links: refused", name, st.Nlink)
	}
	if check != nil {
		return check(st)
	}
	return ""
}

// Lstat returns the status of path without following a final link, its
// directory walked as the package describes (nothing is created): what a
// static check (`supervisor check`) can report before the file is opened.
// A missing file gives an error matching os.ErrNotExist.
func Lstat(path string) (*unix.Stat_t, error) {
	dir, err := OpenParent(path, false)
	if err != nil {
		return nil, err
	}
	defer func() { _ = dir.Close() }() // a directory opened read-only
	var st unix.Stat_t
	if err := unix.Fstatat(int(dir.Fd()), filepath.Base(path), &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, sysErr(path, "stat", err)
	}
	return &st, nil
}
