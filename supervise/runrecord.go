package supervise

import (
	"fmt"
	"os"
	"reflect"
	"sync"

	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
)

// runFacts are what the run state records of each app besides its
// processes and sockets: the release that last passed the gate and a
// change (deploy, reload) in progress. Safe for concurrent use.
type runFacts struct {
	mu   sync.Mutex
	apps map[string]recovery.AppRun // only Gated and Change are set
}

// of returns app's facts as an recovery.AppRun with Gated and Change set.
func (f *runFacts) of(app string) recovery.AppRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.apps[app]
	if r.Change != nil {
		c := *r.Change
		r.Change = &c
	}
	return recovery.AppRun{Gated: r.Gated, Change: r.Change}
}

// setGated records that a generation running in release dir passed app's gate.
func (f *runFacts) setGated(app, dir string) {
	f.update(app, func(r *recovery.AppRun) { r.Gated = dir })
}

// setChange records app's change in progress (nil: none).
func (f *runFacts) setChange(app string, c *recovery.RunChange) {
	f.update(app, func(r *recovery.AppRun) { r.Change = c })
}

func (f *runFacts) update(app string, change func(*recovery.AppRun)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.apps == nil {
		f.apps = map[string]recovery.AppRun{}
	}
	r := f.apps[app]
	change(&r)
	f.apps[app] = r
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
				if run.Gated != "" && m.facts.of(name).Gated == "" {
					m.facts.setGated(name, run.Gated)
				}
			}
		}
	}
	m.record.mu.Lock()
	defer m.record.mu.Unlock()
	m.record.on, m.record.last = true, prev
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

// recovery.RunState records the apps' current process groups, cgroups and listeners,
// keeping from prev (the last record, or the predecessor's) the groups and
// cgroups that still hold processes: a generation being swapped out, or
// orphans not yet drained. tree is one /proc pass.
func (m *Manager) RunState(prev *recovery.RunState, tree *proc.Tree) *recovery.RunState {
	started, _ := proc.StartTime(os.Getpid()) // /proc/self is always readable
	st := &recovery.RunState{PID: os.Getpid(), Started: started, Apps: map[string]recovery.AppRun{}}
	for _, a := range m.owners() {
		name := a.cfg.Name
		run := m.facts.of(name)
		snap := a.snap.Load()
		if pid := snap.MasterPID; pid != 0 {
			if s, ok := tree.Stat(pid); ok {
				g := recovery.ProcGroupOf(tree, s.PGRP)
				run.Groups = append(run.Groups, g)
				run.Serving = &recovery.RunGen{ID: snap.Generation, Group: g, Dir: snap.Release}
			}
		}
		if g := m.cgroupOf(name); g != nil {
			run.Cgroups = append(run.Cgroups, g.Path)
		}
		for i, s := range m.socketsOf(name) {
			_, hold := s.Held()
			rl := recovery.RunListener{Address: s.Spec.Raw, Bound: s.Bound, Hold: hold}
			if b, ok := m.steerOf(name, i).(bpfSteered); ok {
				if ids, err := b.g.ObjectIDs(); err == nil {
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
