package reload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// PointLink atomically points the symlink link at target (a new link is
// written beside it, then renamed over it) and returns the previous target.
// link must already be a symlink: a directory is never replaced.
// A relative target is relative to the link's directory.
func PointLink(link, target string) (previous string, err error) {
	previous, err = ReadLink(link)
	if err != nil {
		return "", err
	}
	abs := target
	if !filepath.IsAbs(abs) {
		abs = filepath.Join(filepath.Dir(link), target)
	}
	tst, err := os.Stat(abs)
	if err != nil {
		return "", fmt.Errorf("deploy: release %w", err)
	}
	if !tst.IsDir() {
		return "", fmt.Errorf("deploy: release %s is not a directory", target)
	}
	tmp := filepath.Join(filepath.Dir(link), "."+filepath.Base(link)+".deploy-tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("deploy: %w", err)
	}
	if err := os.Symlink(target, tmp); err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	if err := os.Rename(tmp, link); err != nil {
		_ = os.Remove(tmp) // best effort; the rename error is the one to report
		return "", fmt.Errorf("deploy: %w", err)
	}
	return previous, nil
}

// ReadLink returns the target of link, which must be a symlink (deploy
// never replaces a directory).
func ReadLink(link string) (string, error) {
	st, err := os.Lstat(link)
	if err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	if st.Mode()&os.ModeSymlink == 0 {
		return "", fmt.Errorf("deploy: %s is not a symlink; deploy needs `directory` to be a link such as /srv/web/current", link)
	}
	target, err := os.Readlink(link)
	if err != nil {
		return "", fmt.Errorf("deploy: %w", err)
	}
	return target, nil
}

// ResolveDir resolves a possibly symlinked working directory (a `current`
// link) to the real release path, so a generation keeps its files while a
// newer release is deployed beside it. An empty dir is the supervisor's
// working directory. The error names dir.
func ResolveDir(dir string) (string, error) {
	if dir == "" {
		return os.Getwd()
	}
	r, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("directory %s: %w", dir, err)
	}
	st, err := os.Stat(r)
	if err != nil {
		return "", fmt.Errorf("directory %s: %w", dir, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("directory %s: %s is not a directory", dir, r)
	}
	return r, nil
}
