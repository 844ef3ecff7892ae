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

// LinkFacts describes the release link link ("": none) and a generation
// running in runsIn (see Facts); follows is true when the generation
// follows the link. A link that does not resolve now counts as none.
func LinkFacts(link, runsIn string, follows bool) Facts {
	f := Facts{RunsIn: runsIn, FollowsLink: follows}
	if link == "" {
		return f
	}
	if target, err := ResolveDir(link); err == nil {
		f.Link, f.LinkTarget = link, target
	}
	return f
}

// Targets returns what a change of an app whose release link is link runs
// in. A deploy of release (not ""): release made absolute, and previous
// the link's target before it (as readlink reads it); the error names
// what failed. A reload: dir, or where dir is "" the release link's
// target now ("" without a link or when it does not resolve: the spawn
// then says why), and no previous.
func Targets(link, release, dir string) (target, previous string, err error) {
	if release == "" {
		if dir == "" && link != "" {
			dir, _ = ResolveDir(link) // "" when it does not resolve: the spawn says why
		}
		return dir, "", nil
	}
	if target, err = filepath.Abs(release); err != nil {
		return "", "", fmt.Errorf("deploy %s: %w", release, err)
	}
	if previous, err = ReadLink(link); err != nil {
		return "", "", err
	}
	return target, previous, nil
}

// PointBack points link at release, where a generation serves again after
// a rollback, when link is a symlink that resolves elsewhere (a deploy
// moved it). It returns the link's previous target and whether it moved;
// nothing moves without a release or a link ("", or not a symlink).
func PointBack(link, release string) (previous string, moved bool, err error) {
	if link == "" || release == "" {
		return "", false, nil
	}
	if _, err := ReadLink(link); err != nil {
		return "", false, nil // not a link: nothing moved it
	}
	if target, err := ResolveDir(link); err == nil && target == release {
		return "", false, nil
	}
	if previous, err = PointLink(link, release); err != nil {
		return "", false, err
	}
	return previous, true, nil
}

// Deploy points link at target, runs steps, and points link back at its
// previous target when steps fail; progress hears of each move. It
// returns PointLink's error (nothing ran), or steps' error joined with
// the failure to point back.
func Deploy(link, target string, progress Progress, steps func() error) error {
	previous, err := PointLink(link, target)
	if err != nil {
		return err
	}
	progress(fmt.Sprintf("pointed %s at %s (was %s)", link, target, previous))
	if err = steps(); err == nil {
		return nil
	}
	if _, perr := PointLink(link, previous); perr != nil {
		progress(fmt.Sprintf("error: pointing %s back at %s: %v", link, previous, perr))
		return errors.Join(err, perr)
	}
	progress(fmt.Sprintf("pointed %s back at %s", link, previous))
	return err
}
