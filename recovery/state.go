// Package recovery finds and ends what a dead predecessor supervised: the
// record a running supervisor keeps in run_dir/state.json (RunState, written
// by a Recorder, with each app's Facts), the orphans found through it
// (process groups, cgroups, listening sockets with their steering rebuilt,
// pidfiles, an unfinished deploy's link) and the serving generation a
// successor tracks until a new one takes over (Gen). It does not supervise:
// the caller decides when to adopt, drain or stop.
package recovery

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/gunisup/supervisor/listen/steer"
	"github.com/gunisup/supervisor/proc"
)

// RunStateFile is the name, in run_dir, of the record a running supervisor
// keeps of its apps' processes and sockets, so that the next one started
// after its death (kill -9, OOM kill, a failed self-upgrade) finds them.
const RunStateFile = "state.json"

// RunState is what a supervisor records in run_dir/state.json.
type RunState struct {
	// PID and Started (start time in clock ticks since boot) name the
	// supervisor that wrote the file, across pid reuse.
	PID     int               `json:"pid"`
	Started uint64            `json:"started"`
	Apps    map[string]AppRun `json:"apps"`
}

// AppRun is one app's processes and listeners in a RunState.
type AppRun struct {
	// Groups are the process groups of the app's live generations (a
	// Gunicorn master, its workers and a USR2 successor share one), and of
	// a predecessor's orphans not yet drained.
	Groups []ProcGroup `json:"groups,omitempty"`
	// Cgroups are the app's cgroup directories: this supervisor's, and a
	// predecessor's not yet drained.
	Cgroups []string `json:"cgroups,omitempty"`
	// Listeners are the app's held sockets, in listen order.
	Listeners []RunListener `json:"listeners,omitempty"`
	// Serving is the tracked generation: the one that receives the app's
	// connections (nil: none runs).
	Serving *RunGen `json:"serving,omitempty"`
	// Gated is the release directory (resolved) of the last generation that
	// passed the gate: a reload's commit, or a start's readiness. A
	// successor recovers to it.
	Gated string `json:"gated,omitempty"`
	// Releases are the last release directories (resolved, oldest first,
	// at most KeepReleases) whose generations passed the gate: where
	// `supctl rollback` goes back to once no generation is kept.
	Releases []string `json:"releases,omitempty"`
	// Change is a deploy or reload in progress (nil: none).
	Change *RunChange `json:"change,omitempty"`
}

// RunGen is a generation of an app: its number in the supervisor run that
// started it, its process group and its release directory.
type RunGen struct {
	ID    int       `json:"id"`
	Group ProcGroup `json:"group"`
	Dir   string    `json:"dir,omitempty"`
}

// RunChange is a deploy or reload in progress. A deploy is recorded before
// it points the link at Target, and forgotten once it has ended (the link
// pointed back on failure): a successor that finds one points Link back at
// Previous unless it already points elsewhere than Target, or Target passed
// the gate.
type RunChange struct {
	// Deploy is true for `supctl deploy`, false for a reload.
	Deploy bool `json:"deploy,omitempty"`
	// Link is the app's `directory` symlink; Target the release a deploy
	// points it at (a reload: the link's target when it began); Previous
	// the link's target before a deploy (as read by readlink).
	Link     string `json:"link,omitempty"`
	Target   string `json:"target,omitempty"`
	Previous string `json:"previous,omitempty"`
}

// ProcGroup is a process group whose leader (pid PGID) started at Leader
// clock ticks after boot: a live process with that pid and another start
// time means the pid was reused and the group is not the app's.
type ProcGroup struct {
	PGID   int    `json:"pgid"`
	Leader uint64 `json:"leader_started"`
}

// RunListener is one held socket: its configured address and the address
// it is bound to (a Unix socket's configured path).
type RunListener struct {
	Address string `json:"address"`
	Bound   string `json:"bound"`
	// Hold is the hidden name a Unix socket is bound at (what its
	// processes' getsockname reports): ".NAME.held", or a generation's own
	// socket's after a steered reload. "" for TCP.
	Hold string `json:"hold,omitempty"`
	// Steer names the BPF objects steering a TCP listener (nil: shared), by
	// which a successor rebuilds the steering on the sockets it takes.
	Steer *steer.ObjectIDs `json:"steer,omitempty"`
}

// ReadRunState reads run_dir/state.json; it returns nil and no error when
// there is none.
func ReadRunState(runDir string) (*RunState, error) {
	p := filepath.Join(runDir, RunStateFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("run state: %w", err)
	}
	var st RunState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("run state %s: %w", p, err)
	}
	return &st, nil
}

// ReleasesOnly returns st reduced to each app's remembered releases (what a
// clean stop leaves for the next supervisor's rollbacks), or nil when no
// app has any.
func (st *RunState) ReleasesOnly() *RunState {
	out := &RunState{PID: st.PID, Started: st.Started, Apps: map[string]AppRun{}}
	for name, run := range st.Apps {
		if len(run.Releases) > 0 {
			out.Apps[name] = AppRun{Releases: run.Releases}
		}
	}
	if len(out.Apps) == 0 {
		return nil
	}
	return out
}

// WriteRunState replaces run_dir/state.json atomically (a temporary file
// renamed over it), so a reader sees the old or the new record, never part.
func WriteRunState(runDir string, st *RunState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("run state: %w", err)
	}
	tmp, err := os.CreateTemp(runDir, "."+RunStateFile+".*")
	if err != nil {
		return fmt.Errorf("run state: %w", err)
	}
	_, werr := tmp.Write(append(b, '\n'))
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name()) // a partial temporary file is worthless
		return fmt.Errorf("run state %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(runDir, RunStateFile)); err != nil {
		_ = os.Remove(tmp.Name()) // the rename failed: nothing refers to it
		return fmt.Errorf("run state: %w", err)
	}
	return nil
}

// CarryOver adds to st the groups and cgroups of prev that still hold a
// process, under their app (kept even when the app left the configuration).
func CarryOver(st, prev *RunState, tree *proc.Tree) {
	for name, old := range prev.Apps {
		run := st.Apps[name]
		for _, g := range old.Groups {
			if !slices.Contains(run.Groups, g) && len(GroupMembers(tree, g)) > 0 {
				run.Groups = append(run.Groups, g)
			}
		}
		for _, c := range old.Cgroups {
			if !slices.Contains(run.Cgroups, c) && len(proc.CgroupProcs(c)) > 0 {
				run.Cgroups = append(run.Cgroups, c)
			}
		}
		if len(run.Groups) > 0 || len(run.Cgroups) > 0 || len(run.Listeners) > 0 {
			st.Apps[name] = run
		}
	}
}

// NewRunState is an empty record of this process: its PID and start time.
func NewRunState() *RunState {
	started, _ := proc.StartTime(os.Getpid()) // /proc/self is always readable
	return &RunState{PID: os.Getpid(), Started: started, Apps: map[string]AppRun{}}
}

// AddServing records generation id, running release dir with its master
// pid, as the app's serving generation, its process group (as tree shows
// it) among the app's groups. A pid of 0 or one tree does not hold adds
// nothing.
func (r *AppRun) AddServing(tree *proc.Tree, pid, id int, dir string) {
	if pid == 0 {
		return
	}
	s, ok := tree.Stat(pid)
	if !ok {
		return
	}
	g := ProcGroupOf(tree, s.PGRP)
	r.Groups = append(r.Groups, g)
	r.Serving = &RunGen{ID: id, Group: g, Dir: dir}
}

// ProcGroupOf names process group pgid by its leader's start time (0 when
// the leader has exited).
func ProcGroupOf(tree *proc.Tree, pgid int) ProcGroup {
	g := ProcGroup{PGID: pgid}
	if s, ok := tree.Stat(pgid); ok {
		g.Leader = s.Starttime
	}
	return g
}

// GroupMembers returns the live processes of group g, none when its pgid
// was reused (a live leader that started at another time). It reads every
// process of tree (Tree.PIDs).
func GroupMembers(tree *proc.Tree, g ProcGroup) []int {
	if s, ok := tree.Stat(g.PGID); ok && g.Leader != 0 && s.Starttime != g.Leader {
		return nil
	}
	var out []int
	for _, pid := range tree.PIDs() {
		if s, ok := tree.Stat(pid); ok && s.PGRP == g.PGID && s.State != "Z" {
			out = append(out, pid)
		}
	}
	return out
}
