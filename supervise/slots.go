package supervise

import (
	"sync/atomic"

	"github.com/gunisup/supervisor/errinbox"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
)

// appSlot is everything the Manager holds for one app: its owner, its
// listen.Table (held sockets and their steering), its log, its cgroup and its generation
// counter. A slot outlives its app's removal by an update (owner nil,
// sockets closed): the log and cgroup stay for the supervisor's life, and
// an app added again under the name continues its generation numbers.
//
// owner, table, log, errs and cgroup are guarded by Manager.mu (an update
// replaces them while requests read them; see Manager.view); the table has
// its own lock for what it holds. restored, needsNoStart,
// recovering and recoverDir are written by NewManager only, before Start
// reads them.
type appSlot struct {
	owner *appOwner
	table *listen.Table
	log   *logs.AppLog
	// errs is the error inbox log feeds.
	errs   *errinbox.Inbox
	cgroup *proc.Cgroup
	// genSeq is the last generation number allocated (see nextGen).
	genSeq atomic.Int64
	// restored: the app was handed over or recovered; needsNoStart: it
	// needs no start (running, or stopped by request).
	restored, needsNoStart bool
	// recovering: the app tracks a predecessor's orphans until a new
	// generation of recoverDir passes the gate (see recoverApp).
	recovering bool
	recoverDir string
	// broken is why the app is set aside for its configuration ("" when
	// it is not; see Manager.setAside); cleared by repair. Guarded by
	// Manager.mu.
	broken string
	// facts are the run state's records of the app (own lock).
	facts runFacts
	// workers is what the app's worker controller publishes (atomics).
	workers workerStats
}

// appView is a consistent copy of a slot's fields guarded by Manager.mu.
type appView struct {
	owner  *appOwner
	table  *listen.Table
	log    *logs.AppLog
	cgroup *proc.Cgroup
}

// slot returns app's slot, or nil for a name the Manager never ran.
func (m *Manager) slot(app string) *appSlot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.apps[app]
}

// view returns a copy of app's slot fields read under m.mu (the zero view
// for an unknown app).
func (m *Manager) view(app string) appView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.apps[app]
	if s == nil {
		return appView{}
	}
	return appView{owner: s.owner, table: s.table, log: s.log, cgroup: s.cgroup}
}

// views returns the views of every slot, removed apps' included, keyed by
// app name.
func (m *Manager) views() map[string]appView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string]appView, len(m.apps))
	for name, s := range m.apps {
		out[name] = appView{owner: s.owner, table: s.table, log: s.log, cgroup: s.cgroup}
	}
	return out
}

// slotFor returns app's slot, creating it; the caller holds m.mu.
func (m *Manager) slotFor(app string) *appSlot {
	s := m.apps[app]
	if s == nil {
		if m.apps == nil {
			m.apps = map[string]*appSlot{}
		}
		s = &appSlot{}
		m.apps[app] = s
	}
	return s
}

// allLogs returns every slot's log keyed by app name (for logs.CloseApps).
func (m *Manager) allLogs() map[string]*logs.AppLog {
	out := map[string]*logs.AppLog{}
	for name, v := range m.views() {
		if v.log != nil {
			out[name] = v.log
		}
	}
	return out
}

// workerStats returns app's worker controller statistics, nil for a name
// the Manager never ran.
func (m *Manager) workerStats(app string) *workerStats {
	if s := m.slot(app); s != nil {
		return &s.workers
	}
	return nil
}
