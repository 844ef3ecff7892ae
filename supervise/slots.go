package supervise

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/scale"
)

// appSlot is everything the Manager holds for one app: its owner, its
// listen.Table (held sockets and their steering), its log, its cgroup, its generation
// counter and its canary view. A slot outlives its app's removal by an update (owner nil,
// sockets closed): the log and cgroup stay for the supervisor's life, and
// an app added again under the name continues its generation numbers.
//
// owner, table, log and cgroup are guarded by Manager.mu (an update
// replaces them while requests read them; see Manager.view); the table has
// its own lock for what it holds. restored, needsNoStart,
// recovering and recoverDir are written by NewManager only, before Start
// reads them.
type appSlot struct {
	owner  *appOwner
	table  *listen.Table
	log    *logs.AppLog
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
	facts recovery.Facts
	// workers is what the app's worker controller publishes (atomics).
	workers scale.Stats
	// canary is the app's canary as status shows it (own lock).
	canary reload.CanaryView
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

// allLogs returns every slot's log, removed apps' included (for
// logs.CloseApps).
func (m *Manager) allLogs() []*logs.AppLog {
	var out []*logs.AppLog
	for _, v := range m.views() {
		if v.log != nil {
			out = append(out, v.log)
		}
	}
	return out
}

// workerStats returns app's worker controller statistics, nil for a name
// the Manager never ran.
func (m *Manager) workerStats(app string) *scale.Stats {
	if s := m.slot(app); s != nil {
		return &s.workers
	}
	return nil
}

// appSet is what the Manager opens for one app before its owner runs: its
// listen table (held listeners and their steering), its log and its cgroup
// (nil: none).
type appSet struct {
	table  *listen.Table
	log    *logs.AppLog
	cgroup *proc.Cgroup
}

// close closes the set's listeners, steering and log (the cgroup stays for
// the supervisor's life, like every app's).
func (s *appSet) close() error {
	errs := []error{s.table.Close()}
	if s.log != nil {
		errs = append(errs, logs.CloseApps(0, s.log)) // nothing was captured yet
	}
	return errors.Join(errs...)
}

// openAll opens every app's set (see openApp) on the sockets handed over
// by the previous image, or inherited, or bound now. On error it closes
// what it opened (see abandonOpen).
func (m *Manager) openAll(opts Options) error {
	socks := opts.Sockets
	if opts.Restore != nil {
		var err error
		if socks, err = opts.Restore.HeldSockets(m.cfg); err != nil {
			return err
		}
	}
	stdout := opts.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	m.stdoutSink = logs.NewWriterSink(stdout)
	for _, app := range m.cfg.Apps {
		held := m.held(app, opts, socks)
		set, err := m.openApp(app, held)
		if err != nil {
			return m.abandonOpen(err, opts.Restore != nil, held)
		}
		m.mu.Lock()
		m.installApp(app.Name, set)
		m.mu.Unlock()
	}
	return nil
}

// held returns the sockets app's table takes instead of binding (nil: it
// binds them): those socks holds for it (handed over, taken from a dead
// predecessor's orphans, or inherited from systemd), with their steering
// as the previous image handed it over, or rebuilt when the app adopts its
// orphans' serving generation (see adopts), else shared.
func (m *Manager) held(app *config.App, opts Options, socks map[string][]*listen.Socket) *listen.Held {
	s, ok := socks[app.Name]
	switch {
	case !ok:
		return nil
	case opts.Restore != nil:
		return opts.Restore.Held(app.Name, s, m.logger)
	case opts.Orphans.Took(app.Name):
		return opts.Orphans.Held(app, s, m.adopts(opts, app), m.bpfWhy, m.logger)
	}
	return &listen.Held{Sockets: s, Why: "inherited from systemd"}
}

// openApp opens everything app runs with, for NewManager and for an app an
// update adds: its listen table (of held, the sockets it inherited or was
// handed over, or bound now and steered when held is nil; see
// listen.Open), its log, its cgroup (when the Manager has a cgroup root;
// one that cannot be created is logged and the app runs without) and its
// statsd bridge (Options.OpenStatsd), and passes the log to
// Options.WatchLog. On error it closes what it opened:
// held sockets and their steering stay the caller's.
func (m *Manager) openApp(app *config.App, held *listen.Held) (*appSet, error) {
	t, err := listen.Open(app, held, m.bpfWhy, m.logger)
	if err != nil {
		return nil, err
	}
	s := &appSet{}
	if held == nil {
		s.table = t // bound now: the set closes it on error
	}
	l, err := logs.OpenApp(app, m.stdoutSink, m.logger)
	if err != nil {
		return nil, errors.Join(err, s.close())
	}
	s.log = l
	if m.watchLog != nil {
		m.watchLog(app.Name, l.App)
	}
	if m.cgroupRoot != nil {
		g, err := m.cgroupRoot.App(app.Name)
		if err != nil {
			m.logger.Warn("app runs without a cgroup", "app", app.Name, "err", err)
		}
		s.cgroup = g
	}
	if app.Kind == config.KindGunicorn && app.Statsd && m.openStatsd != nil {
		if err := m.openStatsd(app.Name); err != nil {
			return nil, errors.Join(fmt.Errorf("app %s: statsd bridge: %w", app.Name, err), s.close())
		}
	}
	s.table = t
	return s, nil
}

// installApp registers set as app name's in its slot (created if need
// be) and returns the slot; the caller holds m.mu.
func (m *Manager) installApp(name string, set *appSet) *appSlot {
	s := m.slotFor(name)
	s.table = set.table
	s.log = set.log
	if set.cgroup != nil {
		s.cgroup = set.cgroup
	}
	return s
}
