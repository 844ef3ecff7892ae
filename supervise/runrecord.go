package supervise

import (
	"fmt"
	"os"
	"reflect"
	"sync"

	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
)

// runFacts are what the run state records of an app besides its processes
// and sockets: the release that last passed the gate and a change (deploy,
// reload) in progress. Safe for concurrent use.
type runFacts struct {
	mu     sync.Mutex
	gated  string
	change *recovery.RunChange
}

// of returns the facts as a recovery.AppRun with Gated and Change (a copy) set.
func (f *runFacts) of() recovery.AppRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := recovery.AppRun{Gated: f.gated}
	if f.change != nil {
		c := *f.change
		r.Change = &c
	}
	return r
}

// setGated records that a generation running in release dir passed the gate.
func (f *runFacts) setGated(dir string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gated = dir
}

// setChange records the change in progress (nil: none).
func (f *runFacts) setChange(c *recovery.RunChange) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.change = c
}

// factsOf returns app's run facts, nil for an app without a slot.
func (m *Manager) factsOf(app string) *runFacts {
	if s := m.slot(app); s != nil {
		return &s.facts
	}
	return nil
}

// runRecord is the writer of run_dir/state.json; it is off until
// RecordRunState.
type runRecord struct {
	mu   sync.Mutex
	on   bool
	last *recovery.RunState // the last record written (or the predecessor's)
}

// RecordRunState makes WriteRunState write run_dir/state.json, starting
// from prev (the predecessor's record, nil for none): the groups and cgroups
// of prev that still hold processes are carried over until they are gone.
// Without prev, a record this process wrote (before a self-upgrade's exec)
// is the start, and its apps' gated releases are kept.
func (m *Manager) RecordRunState(prev *recovery.RunState) {
	if prev == nil {
		if own, err := recovery.ReadRunState(m.runDir); err == nil && own != nil && own.PID == os.Getpid() {
			prev = own
			for name, run := range own.Apps {
				m.keepGated(name, run.Gated)
			}
		}
	}
	m.record.mu.Lock()
	defer m.record.mu.Unlock()
	m.record.on, m.record.last = true, prev
}

// keepGated records dir as app's gated release unless one is recorded
// ("" does nothing). An app the Manager does not run gets a slot without an
// owner, which an update adding the app takes up.
func (m *Manager) keepGated(app, dir string) {
	if dir == "" {
		return
	}
	m.mu.Lock()
	f := &m.slotFor(app).facts
	m.mu.Unlock()
	if f.of().Gated == "" {
		f.setGated(dir)
	}
}

// WriteRunState writes run_dir/state.json now when its content changed
// since the last write. It does nothing before RecordRunState. A deploy
// records itself through it before it moves the link, and a reload's
// commit once the new generation serves; the daemon calls it every second.
func (m *Manager) WriteRunState() error {
	m.record.mu.Lock()
	defer m.record.mu.Unlock()
	if !m.record.on {
		return nil
	}
	tree, err := proc.NewTree("")
	if err != nil {
		return fmt.Errorf("run state: %w", err)
	}
	st := m.RunState(m.record.last, tree)
	if reflect.DeepEqual(st, m.record.last) {
		return nil
	}
	if err := recovery.WriteRunState(m.runDir, st); err != nil {
		return err
	}
	m.record.last = st
	return nil
}

// recordNow writes the run state at once; a failure is logged (the next
// periodic write tries again).
func (m *Manager) recordNow(app string) {
	if err := m.WriteRunState(); err != nil {
		m.logger.Warn("recovery record", "app", app, "err", err)
	}
}

// RecordPokes delivers a token when the run state should be written soon
// (coalesced): a generation was spawned or passed the gate.
func (m *Manager) RecordPokes() <-chan struct{} { return m.recordPoke }

// pokeRecord asks for a run state write soon; it never blocks.
func (m *Manager) pokeRecord() {
	select {
	case m.recordPoke <- struct{}{}:
	default:
	}
}

// RunState records the apps' current process groups, cgroups and
// listeners, keeping from prev (the last record, or the predecessor's) the groups and
// cgroups that still hold processes: a generation being swapped out, or
// orphans not yet drained. tree is one /proc pass.
func (m *Manager) RunState(prev *recovery.RunState, tree *proc.Tree) *recovery.RunState {
	started, _ := proc.StartTime(os.Getpid()) // /proc/self is always readable
	st := &recovery.RunState{PID: os.Getpid(), Started: started, Apps: map[string]recovery.AppRun{}}
	for _, a := range m.owners() {
		name := a.cfg.Name
		run := m.factsOf(name).of()
		snap := a.snap.Load()
		if pid := snap.MasterPID; pid != 0 {
			if s, ok := tree.Stat(pid); ok {
				g := recovery.ProcGroupOf(tree, s.PGRP)
				run.Groups = append(run.Groups, g)
				run.Serving = &recovery.RunGen{ID: snap.Generation, Group: g, Dir: snap.Release}
			}
		}
		v := m.view(name)
		if g := v.cgroup; g != nil {
			run.Cgroups = append(run.Cgroups, g.Path)
		}
		for _, e := range v.table.Entries() {
			s := e.Socket
			_, hold := s.Held()
			rl := recovery.RunListener{Address: s.Spec.Raw, Bound: s.Bound, Hold: hold}
			if b, ok := e.Steering.(*listen.GenSockets); ok {
				if ids, err := b.ObjectIDs(); err == nil {
					rl.Steer = &ids
				}
			}
			run.Listeners = append(run.Listeners, rl)
		}
		st.Apps[name] = run
	}
	if prev != nil {
		recovery.CarryOver(st, prev, tree)
	}
	return st
}
