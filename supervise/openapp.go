package supervise

import (
	"errors"
	"fmt"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/errinbox"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
)

// appSet is what the Manager opens for one app before its owner runs: its
// listen table (held listeners and their steering), its log, the error
// inbox its log feeds and its cgroup (nil: none).
type appSet struct {
	table  *listen.Table
	log    *logs.AppLog
	errs   *errinbox.Inbox
	cgroup *proc.Cgroup
}

// close closes the set's listeners, steering and log (the cgroup stays for
// the supervisor's life, like every app's).
func (s *appSet) close() error {
	errs := []error{s.table.Close()}
	if s.log != nil {
		errs = append(errs, logs.CloseApps(map[string]*logs.AppLog{"": s.log}, 0)) // nothing was captured yet
	}
	return errors.Join(errs...)
}

// openApp opens everything app runs with, for NewManager and for an app an
// update adds: its listeners (held, when the app's sockets were inherited
// or handed over, with their steering gens as adopted or rebuilt; else
// bound now and steered, see openListeners), its log, its cgroup (when the Manager has a cgroup root;
// one that cannot be created is logged and the app runs without) and its
// statsd bridge (Options.OpenStatsd). On error it closes what it opened:
// held sockets and gens stay the caller's.
func (m *Manager) openApp(app *config.App, held []*listen.Socket, gens []listen.Steering, isHeld bool) (*appSet, error) {
	s := &appSet{}
	if !isHeld {
		t, err := m.openListeners(app)
		if err != nil {
			return nil, err
		}
		s.table = t
	}
	l, err := logs.OpenApp(app, m.stdoutSink, m.logger)
	if err != nil {
		return nil, errors.Join(err, s.close())
	}
	s.log = l
	s.errs = errinbox.Watch(l.App, errinbox.Options{})
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
	if isHeld {
		s.table = listen.NewTable(held, gens)
	}
	return s, nil
}

// openListeners binds app's listeners with the steering app.Steering and
// the kernel allow (see listen.OpenTable) and logs each one's mode; BPF
// availability is probed at most once per Manager, and only for an app
// with a TCP listener.
func (m *Manager) openListeners(app *config.App) (*listen.Table, error) {
	bpfWhy := ""
	if app.Steering == config.SteeringAuto && hasTCP(app) {
		bpfWhy = m.bpfWhy()
	}
	t, whys, err := listen.OpenTable(app, bpfWhy)
	if err != nil {
		return nil, err
	}
	for i, e := range t.Entries() {
		m.logger.Info("listener steering", "app", app.Name, "listener", e.Socket.Spec.Raw, "mode", e.Mode(), "why", whys[i])
	}
	return t, nil
}

// installApp registers set as app name's in its slot (created if need
// be) and returns the slot; the caller holds m.mu.
func (m *Manager) installApp(name string, set *appSet) *appSlot {
	s := m.slotFor(name)
	s.table = set.table
	s.log = set.log
	s.errs = set.errs
	if set.cgroup != nil {
		s.cgroup = set.cgroup
	}
	return s
}
