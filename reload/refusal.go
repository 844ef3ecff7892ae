package reload

import (
	"errors"
	"fmt"
)

// ErrNothingKept is a rollback's refusal when the app keeps no previous
// generation to steer back to (no keep_previous, its window ended, or it
// exited); the rollback then redeploys the previous release.
var ErrNothingKept = errors.New("no previous generation kept")

// errNotKept wraps why a swap's previous generation is drained as usual.
var errNotKept = errors.New("previous generation not kept")

// errNoWindow is errNotKept for an app without keep_previous: Swap shows
// no reason for it.
var errNoWindow = fmt.Errorf("%w: keep_previous is 0", errNotKept)

// Serving is which generation an app's owner tracks, seen from a reload run.
type Serving int

const (
	// ServingOther is any generation the run did not make serve.
	ServingOther Serving = iota
	// ServingNone: no generation is tracked (it exited during the run).
	ServingNone
	// ServingOld is the generation the run replaces.
	ServingOld
	// ServingNew is the generation the run committed last.
	ServingNew
)

// ServingOf says which generation tracked (nil: none) is to a run that
// replaces old and committed committed last (nil: none yet).
func ServingOf(tracked, old, committed Gen) Serving {
	switch {
	case tracked == nil:
		return ServingNone
	case tracked == committed:
		return ServingNew
	case tracked == old:
		return ServingOld
	}
	return ServingOther
}

// Standing is where a reload run stands with its app's owner when the run
// asks it to commit a new generation or to keep the one it replaced.
type Standing struct {
	// App names the app in the refusals.
	App string
	// Cancelled is true once a stop or restart abandoned the run, and
	// while the app stops.
	Cancelled bool
	// Serving is the generation the owner tracks.
	Serving Serving
	// Recovery is true when the run replaces a previous supervisor's
	// generation.
	Recovery bool
	// Window is true when the app keeps a swap's previous generation
	// (keep_previous).
	Window bool
	// Steered is true when some listener of the app is steered (BPF or
	// rename), so a kept generation gets no new connections.
	Steered bool
}

// CommitRefusal says why the run may not make its new generation the
// serving one (nil: it may). A cancelled run commits nothing, and a
// generation is never replaced without its reload stopping it: the
// serving one must be the run's old or new one, or none.
func (s Standing) CommitRefusal() error {
	switch {
	case s.Cancelled:
		return fmt.Errorf("app %s: reload cancelled by a stop or restart", s.App)
	case s.Serving == ServingOther:
		return fmt.Errorf("app %s: the serving generation changed during the reload", s.App)
	}
	return nil
}

// KeepRefusal says why old, the generation the run's swap replaced, may
// not be kept booted and unsteered for a rollback (nil: it may); exited
// is true once old has exited. The error wraps errNotKept, and is
// errNoWindow for an app without keep_previous.
func (s Standing) KeepRefusal(old string, exited bool) error {
	switch {
	case !s.Window:
		return errNoWindow
	case s.Cancelled:
		return fmt.Errorf("%w: app %s is stopping or restarting", errNotKept, s.App)
	case s.Recovery:
		return fmt.Errorf("%w: %s belongs to a previous supervisor", errNotKept, old)
	case s.Serving != ServingNew || exited:
		return fmt.Errorf("%w: the serving generation changed during the reload", errNotKept)
	case !s.Steered:
		return fmt.Errorf("%w: the app's listeners are shared (steering \"shared\"), where a kept generation would go on accepting new connections", errNotKept)
	}
	return nil
}

// ReExecRefusal is why a master that a USR2 re-exec of old started in dir
// ("": unknown) is refused under the release link link ("": none): it
// does not run the release the link points at, so it would serve the old
// code (a re-exec runs where old was started, and Gunicorn takes $PWD only
// if it named the same directory then). nil when it does, or when dir or
// the link's target is unknown.
func ReExecRefusal(link, dir string, old fmt.Stringer) error {
	f := LinkFacts(link, dir, false)
	if dir == "" || f.Reaches() {
		return nil
	}
	return fmt.Errorf("the new master runs in %s, not in %s (where %s points): %s was not started from the link (strategy swap, or a rollback started while the link pointed elsewhere), so its re-exec does not follow it; reload with --strategy swap",
		dir, f.LinkTarget, f.Link, old)
}
