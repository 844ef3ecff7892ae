package supervise

import (
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
)

// factsOf returns app's run facts, nil for an app without a slot.
func (m *Manager) factsOf(app string) *recovery.Facts {
	if s := m.slot(app); s != nil {
		return &s.facts
	}
	return nil
}

// RecordRunState makes WriteRunState write run_dir/state.json, starting
// from prev (the predecessor's record, nil for none; see
// recovery.Recorder.Start). What it keeps of an app the Manager does not
// run goes into a slot without an owner, which an update adding the app
// takes up.
func (m *Manager) RecordRunState(prev *recovery.RunState) {
	m.record.Start(m.runDir, prev, func(app string) *recovery.Facts {
		m.mu.Lock()
		defer m.mu.Unlock()
		return &m.slotFor(app).facts
	})
}

// WriteRunState writes run_dir/state.json now when its content changed
// since the last write. It does nothing before RecordRunState. A deploy
// records itself through it before it moves the link, and a reload's
// commit once the new generation serves; the daemon calls it every second.
func (m *Manager) WriteRunState() error {
	return m.record.Write(m.recordApps)
}

// recordApps adds to st each app's record (see recovery.Facts.Run): its
// facts, serving generation, cgroup and listeners; tree is one /proc pass.
func (m *Manager) recordApps(st *recovery.RunState, tree *proc.Tree) {
	for _, a := range m.owners() {
		name, snap := a.cfg.Name, a.snap.Load()
		v := m.view(name)
		s := recovery.Serving{PID: snap.MasterPID, Gen: snap.Generation, Release: snap.Release, Listeners: v.table.Entries()}
		if v.cgroup != nil {
			s.Cgroup = v.cgroup.Path
		}
		st.Apps[name] = m.factsOf(name).Run(tree, s)
	}
}

// ReleasesState is the run state a clean stop leaves: the apps' remembered
// releases only (see recovery.RunState.ReleasesOnly), nil when none has any.
func (m *Manager) ReleasesState() *recovery.RunState {
	st := recovery.NewRunState()
	for _, a := range m.owners() {
		st.Apps[a.cfg.Name] = m.factsOf(a.cfg.Name).Of()
	}
	return st.ReleasesOnly()
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
