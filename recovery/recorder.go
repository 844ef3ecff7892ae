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
// self-upgrade's exec) is the start, and its apps' gated releases are kept;
// a predecessor's record with nothing to recover (after a clean stop, see
// RunState.ReleasesOnly) is not. The apps' remembered releases are kept
// either way. What is kept goes into facts(app), which is called only for
// an app with something to keep.
func (r *Recorder) Start(dir string, prev *RunState, facts func(app string) *Facts) {
	from, own := prev, false
	if prev == nil {
		if rec, err := ReadRunState(dir); err == nil && rec != nil {
			from, own = rec, rec.PID == os.Getpid()
		}
		if own {
			prev = from
		}
	}
	if from != nil {
		for name, run := range from.Apps {
			keep(facts, name, run, own)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.on, r.dir, r.last = true, dir, prev
}

// keep records run's releases as app's unless some are recorded (see
// Facts.SetReleases) and, when gated, run's gated release unless one is.
func keep(facts func(app string) *Facts, app string, run AppRun, gated bool) {
	if !gated {
		run.Gated = ""
	}
	if run.Gated == "" && len(run.Releases) == 0 {
		return
	}
	f := facts(app)
	f.SetReleases(run.Releases)
	if run.Gated != "" && f.Of().Gated == "" {
		f.SetGated(run.Gated)
	}
}

// Write writes the record of this process (see NewRunState) whose apps
// build adds from one /proc pass, with the groups and cgroups of the last
// record (or the predecessor's) that still hold processes carried over
// (see CarryOver), when it differs from the last one written. It does
// nothing before Start; errors name the run state.
func (r *Recorder) Write(build func(st *RunState, tree *proc.Tree)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on {
		return nil
	}
	tree, err := proc.NewTree("")
	if err != nil {
		return fmt.Errorf("run state: %w", err)
	}
	st := NewRunState()
	build(st, tree)
	if r.last != nil {
		CarryOver(st, r.last, tree)
	}
	if reflect.DeepEqual(st, r.last) {
		return nil
	}
	if err := WriteRunState(r.dir, st); err != nil {
		return err
	}
	r.last = st
	return nil
}

// Serving is what an app runs now, for its record: the master pid of its
// serving generation (0: none), that generation's number and release, its
// cgroup's path ("" for none) and its listen table's entries.
type Serving struct {
	PID, Gen  int
	Release   string
	Cgroup    string
	Listeners []listen.Entry
}

// Run returns the app's record: its facts (see Of), s's generation as the
// serving one with its process group as tree shows it (see
// AppRun.AddServing), its cgroup and its listeners (see Listeners).
func (f *Facts) Run(tree *proc.Tree, s Serving) AppRun {
	r := f.Of()
	r.AddServing(tree, s.PID, s.Gen, s.Release)
	if s.Cgroup != "" {
		r.Cgroups = append(r.Cgroups, s.Cgroup)
	}
	r.Listeners = Listeners(s.Listeners)
	return r
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
