package supervise

import (
	"fmt"
	"os"
	"reflect"
	"sync"

	"github.com/gunisup/supervisor/proc"
)

// runFacts are what the run state records of an app besides its processes
// and sockets: the release that last passed the gate and a change (deploy,
// reload) in progress. Safe for concurrent use.
type runFacts struct {
	mu     sync.Mutex
	gated  string
	change *RunChange
}

// of returns the facts as an AppRun with Gated and Change (a copy) set.
func (f *runFacts) of() AppRun {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := AppRun{Gated: f.gated}
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
func (f *runFacts) setChange(c *RunChange) {
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
	last *RunState // the last record written (or the predecessor's)
}

// RecordRunState makes WriteRunState write run_dir/state.json, starting
// from prev (the predecessor's record, nil for none): the groups and cgroups
// of prev that still hold processes are carried over until they are gone.
// Without prev, a record this process wrote (before a self-upgrade's exec)
// is the start, and its apps' gated releases are kept.
func (m *Manager) RecordRunState(prev *RunState) {
	if prev == nil {
		if own, err := ReadRunState(m.runDir); err == nil && own != nil && own.PID == os.Getpid() {
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
	if err := WriteRunState(m.runDir, st); err != nil {
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
