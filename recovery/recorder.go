package recovery

import (
	"fmt"
	"os"
	"reflect"
	"slices"
	"sync"

	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
)

// Facts are what the run state records of an app besides its processes
// and sockets: the release that last passed the gate and a change (deploy,
// reload) in progress. Safe for concurrent use; the zero value is empty.
type Facts struct {
	mu       sync.Mutex
	gated    string
	releases []string
	change   *RunChange
}

// KeepReleases is how many releases that passed the gate Facts remember
// (AppRun.Releases).
const KeepReleases = 5

// Of returns the facts as an AppRun with Gated, Releases and Change
// (copies) set.
func (f *Facts) Of() AppRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := AppRun{Gated: f.gated, Releases: slices.Clone(f.releases)}
	if f.change != nil {
		c := *f.change
		r.Change = &c
	}
	return r
}

// SetGated records that a generation running in release dir passed the gate.
// It is also appended to the releases (see AppRun.Releases) unless it is
// the last one; "" is not.
func (f *Facts) SetGated(dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gated = dir
	f.releases = pushRelease(f.releases, dir)
}

// SetReleases records releases (oldest first, a predecessor's) unless
// some are recorded already; at most the last KeepReleases are kept.
func (f *Facts) SetReleases(releases []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.releases) > 0 {
		return
	}
	for _, r := range releases {
		f.releases = pushRelease(f.releases, r)
	}
}

// Previous returns the newest remembered release other than current ("":
// none).
func (f *Facts) Previous(current string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := len(f.releases) - 1; i >= 0; i-- {
		if r := f.releases[i]; r != current {
			return r
		}
	}
	return ""
}

// pushRelease appends dir to releases unless it is "" or the last one,
// keeping the last KeepReleases.
func pushRelease(releases []string, dir string) []string {
	if dir == "" || (len(releases) > 0 && releases[len(releases)-1] == dir) {
		return releases
	}
	releases = append(releases, dir)
	if n := len(releases); n > KeepReleases {
		releases = slices.Clone(releases[n-KeepReleases:])
	}
	return releases
}

// SetChange records the change in progress (nil: none).
func (f *Facts) SetChange(c *RunChange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.change = c
}

// Recorder writes a run directory's RunStateFile when its content changed.
// The zero value is off (Write does nothing) until Start. Safe for
// concurrent use.
type Recorder struct {
	mu   sync.Mutex
	on   bool
	dir  string
	last *RunState // the last record written (or the predecessor's)
}

// Start turns the recorder on for run directory dir, starting from prev
// (the predecessor's record, nil for none): the groups and cgroups of prev
// that still hold processes are carried over until they are gone (see
// CarryOver). Without prev, a record this process wrote (before a
// self-upgrade's exec) is the start, and keep is called with each of its
// apps' gated release (maybe "") and releases; a predecessor's record
// with nothing to recover (after a clean stop, see RunState.ReleasesOnly)
// gives its apps' releases only (gated ""). With prev, keep is called with
// its apps' releases only.
func (r *Recorder) Start(dir string, prev *RunState, keep func(app, gated string, releases []string)) {
	if prev == nil {
		rec, err := ReadRunState(dir)
		switch {
		case err != nil || rec == nil:
		case rec.PID == os.Getpid():
			prev = rec
			for name, run := range rec.Apps {
				keep(name, run.Gated, run.Releases)
			}
		default:
			for name, run := range rec.Apps {
				keep(name, "", run.Releases)
			}
		}
	} else {
		for name, run := range prev.Apps {
			keep(name, "", run.Releases)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.dir, r.last = true, dir, prev
}

// Write writes the record build makes from the last one and one /proc
// pass, when it differs from the last one written. It does nothing before
// Start; errors name the run state.
func (r *Recorder) Write(build func(prev *RunState, tree *proc.Tree) *RunState) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return nil
	}
	tree, err := proc.NewTree("")
	if err != nil {
		return fmt.Errorf("run state: %w", err)
	}
	st := build(r.last, tree)
	if reflect.DeepEqual(st, r.last) {
		return nil
	}
	if err := WriteRunState(r.dir, st); err != nil {
		return err
	}
	r.last = st
	return nil
}

// Listeners records an app's listeners, one per entry of its table: the
// address, where it is bound, the hidden name of a Unix socket and the
// BPF objects of a steered TCP one (see RunListener).
func Listeners(entries []listen.Entry) []RunListener {
	var out []RunListener
	for _, e := range entries {
		s := e.Socket
		_, hold := s.Held()
		rl := RunListener{Address: s.Spec.Raw, Bound: s.Bound, Hold: hold}
		if b, ok := e.Steering.(*listen.GenSockets); ok {
			if ids, err := b.ObjectIDs(); err == nil {
				rl.Steer = &ids
			}
		}
		out = append(out, rl)
	}
	return out
}
