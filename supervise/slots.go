package supervise

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/scale"
)

// appSlot is everything the Manager holds for one app. It outlives the
// app's removal by an update (owner and table nil): the log and cgroup
// stay for the supervisor's life, and an app added again under the name
// continues its generation numbers. owner, the set and broken are guarded
// by Manager.mu (see Manager.view); restored, needsNoStart, recovering and
// recoverDir are written by NewManager only, before Start reads them.
type appSlot struct {
	owner *appOwner
	appSet
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
	// it is not; see Manager.setAside); cleared by repair.
	broken string
	// facts are the run state's records of the app (own lock).
	facts recovery.Facts
	// workers is what the app's worker controller publishes (atomics).
	workers scale.Stats
	// canary is the app's canary as status shows it (own lock).
	canary reload.CanaryView
}

// appSet is what the Manager opens for one app before its owner runs: its
// listen table (held listeners and their steering), its log and its cgroup
// (nil: none).
type appSet struct {
	table  *listen.Table
	log    *logs.AppLog
	cgroup *proc.Cgroup
}

// appView is a consistent copy of an app's owner and set, read under
// Manager.mu.
type appView struct {
	name  string
	owner *appOwner
	appSet
}

// slot returns app's slot, or nil for a name the Manager never ran.
func (m *Manager) slot(app string) *appSlot {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.apps[app]
}

// view returns app's view (the zero view for an unknown app).
func (m *Manager) view(app string) appView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if s := m.apps[app]; s != nil {
		return appView{name: app, owner: s.owner, appSet: s.appSet}
	}
	return appView{}
}

// views returns the view of every slot, removed apps' included, sorted by
// app name.
func (m *Manager) views() []appView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]appView, 0, len(m.apps))
	for name, s := range m.apps {
		out = append(out, appView{name: name, owner: s.owner, appSet: s.appSet})
	}
	slices.SortFunc(out, func(a, b appView) int { return strings.Compare(a.name, b.name) })
	return out
}

// slotFor returns app's slot, creating it; the caller holds m.mu.
func (m *Manager) slotFor(app string) *appSlot {
	if m.apps[app] == nil {
		m.apps[app] = &appSlot{}
	}
	return m.apps[app]
}

// allLogs returns every slot's log (nil: none), removed apps' included,
// for logs.CloseApps.
func (m *Manager) allLogs() []*logs.AppLog {
	var out []*logs.AppLog
	for _, v := range m.views() {
		out = append(out, v.log)
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

// CgroupDir returns the directory of app's cgroup, "" when it has none.
func (m *Manager) CgroupDir(app string) string { return m.view(app).cgroup.Dir() }

// close closes the set's listeners, steering and log (the cgroup stays for
// the supervisor's life, like every app's).
func (s *appSet) close() error {
	return errors.Join(s.table.Close(), logs.CloseApps(0, s.log)) // nothing was captured yet
}

// openAll opens every app's set (see openApp) on the sockets handed over
// by the previous image, or inherited, or bound now, and registers it in
// the app's slot. On error it returns it after undoing what it opened: on
// a fresh start it closes the sockets (those of the apps opened so far,
// and the failed app's held ones and their steering); on a take-over from
// a previous image every socket and steering descriptor stays open (the
// state names them; the caller hands them back with upgrade.Fallback or
// exits). The logs close either way: nothing was captured yet.
func (m *Manager) openAll(opts Options) error {
	socks := opts.Sockets
	if opts.Restore != nil {
		var err error
		if socks, err = opts.Restore.HeldSockets(m.cfg); err != nil {
			return err
		}
	}
	m.stdoutSink = logs.NewWriterSink(opts.Stdout)
	for _, app := range m.cfg.Apps {
		held := m.held(app, opts, socks)
		set, err := m.openApp(app, held)
		if err != nil {
			if opts.Restore == nil {
				err = errors.Join(err, held.Close())
				m.CloseSockets()
			}
			_ = logs.CloseApps(0, m.allLogs()...) // nothing was captured yet: nothing to lose
			return err
		}
		m.mu.Lock()
		m.installApp(app.Name, set)
		m.mu.Unlock()
	}
	return nil
}

// held returns the sockets socks holds for app (nil: it binds its own),
// with their steering as the previous image handed it over, rebuilt on
// sockets taken from orphans it adopts (see adopts), or else shared.
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

// openApp opens everything app runs with, at start and for an app an
// update adds: its listen table (on held, or bound now when held is nil;
// see listen.Open), its log (passed to Options.WatchLog), its cgroup (one
// that cannot be created is logged and the app runs without) and its
// statsd bridge (Options.OpenStatsd). On error it closes what it opened;
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
	if s.log, err = logs.OpenApp(app, m.stdoutSink, m.logger); err != nil {
		return nil, errors.Join(err, s.close())
	}
	if m.watchLog != nil {
		m.watchLog(app.Name, s.log.App)
	}
	if m.cgroups != nil {
		if s.cgroup, err = m.cgroups.App(app.Name); err != nil {
			m.logger.Warn("app runs without a cgroup", "app", app.Name, "err", err)
		}
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
// be; a cgroup it had stays when set has none) and returns the slot; the
// caller holds m.mu.
func (m *Manager) installApp(name string, set *appSet) *appSlot {
	s := m.slotFor(name)
	s.table, s.log = set.table, set.log
	if set.cgroup != nil {
		s.cgroup = set.cgroup
	}
	return s
}

// refuse closes app's listeners (held sockets and steering) after a stop by
// request, once nothing of the app runs: a TCP port is unbound
// (connect: refused) and a Unix socket's path is removed (connect: no such
// file), so a proxy fails over at once instead of waiting in a backlog
// nobody accepts from. An app with a `systemd:NAME` listener keeps its
// table: systemd's socket cannot be bound again. The table stays in the
// slot, closed, for status; relisten binds it again.
func (m *Manager) refuse(app *config.App) {
	if listen.HasSystemd(app) {
		m.logger.Info("stopped app keeps its listeners: systemd passed them", "app", app.Name)
		return
	}
	t := m.view(app.Name).table
	if len(t.Entries()) == 0 { // no listeners (a nil table has none)
		return
	}
	if err := t.Close(); err != nil {
		m.logger.Warn("close listeners of stopped app", "app", app.Name, "err", err)
	}
	m.logger.Info("listeners closed: new connections are refused until the app starts", "app", app.Name)
}

// relisten binds app's listeners again when refuse closed them (nothing to
// do otherwise), steered as at start, each TCP one at the address it had
// (a configured port 0 keeps the port the kernel chose). An error names the
// listener, as at start; the table stays closed then.
func (m *Manager) relisten(app *config.App) error {
	old := m.view(app.Name).table
	if !old.Closed() {
		return nil
	}
	t, err := old.Reopen(app, m.bpfWhy, m.logger)
	if err != nil {
		return err
	}
	m.mu.Lock()
	s := m.apps[app.Name]
	swapped := s != nil && s.table == old
	if swapped {
		s.table = t
	}
	m.mu.Unlock()
	if !swapped {
		return t.Close() // an update gave the app a new table meanwhile
	}
	m.logger.Info("listeners bound again", "app", app.Name)
	return nil
}

// socketUse says which listening sockets a new generation gets.
type socketUse int

const (
	// useServing: a start or restart serves at once; on a Unix listener it
	// shares the serving socket and the connections queued there.
	useServing socketUse = iota
	// useOwn: a reload's takeover gets its own sockets, which receive
	// connections only once it commits.
	useOwn
)

func (u socketUse) String() string {
	if u == useOwn {
		return "own"
	}
	return "serving"
}

// queuePoll is how often a retiring generation's queues are read while it
// quiesces (see listen.Table.Quiesce).
const queuePoll = 5 * time.Millisecond

// spawn starts generation r.ID of app (see gen.Spawner.Spawn) on the
// descriptors of app's held sockets use says (see listen.Table.Open). On
// error the sockets bound for it stay open until releaseGen.
func (m *Manager) spawn(ctx context.Context, app *config.App, r gen.Request, use socketUse) (*gen.Generation, error) {
	fds, stop, err := m.view(app.Name).table.Open(r.ID, use == useOwn)
	if err != nil {
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	r.FDs, r.Stop = fds, stop
	return m.spawner.Spawn(ctx, m.genApp(app), r)
}

// releaseGen records that generation id of app exited (see
// listen.Steering.Release); a failure is logged.
func (m *Manager) releaseGen(app string, id int) {
	if err := m.view(app).table.Release(id); err != nil {
		m.logger.Warn("release generation socket", "app", app, "generation", id, "err", err)
	}
}

// genApp is what app's slot brings to its generations (see gen.App): its
// log, its cgroup and its worker statistics.
func (m *Manager) genApp(app *config.App) gen.App {
	v := m.view(app.Name)
	return gen.App{Cfg: app, Log: v.log, Cgroup: v.cgroup, Workers: m.workerStats(app.Name)}
}

// stopTimeout is app's stop_timeout as configured now (the default for an
// app no longer configured).
func (m *Manager) stopTimeout(app string) time.Duration {
	if a := m.Config().App(app); a != nil {
		return a.StopTimeout
	}
	return config.DefaultStopTimeout
}
