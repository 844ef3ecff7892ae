package supervise

import (
	"context"
	"fmt"
	"strings"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/status"
)

// setAside marks the apps of cfg.Broken (see config.LoadApart): their
// owners never start a generation. One that tracks a predecessor's
// serving generation (see adoptOrphans) is Failed at once and leaves that
// generation serving on its held sockets, untouched and not restarted
// when it exits, until an update gives the app a valid table (see
// repair) or a stop ends it. The others fail when asked to start.
// Called by NewManager, before Start.
func (m *Manager) setAside(cfg *config.Config) {
	for name, err := range cfg.Broken {
		s := m.slot(name)
		if s == nil || s.owner == nil {
			continue
		}
		reason := "config error: " + strings.ReplaceAll(err.Error(), "\n", "; ")
		m.mu.Lock()
		s.broken, s.recovering = reason, false
		m.mu.Unlock()
		a := s.owner
		a.broken = reason
		if a.gen != nil {
			a.state = status.Failed
			a.message = fmt.Sprintf("%s; %s serves on the held sockets and is not restarted: fix the configuration, then supctl update", reason, a.gen)
			m.logger.Error("recovery: app set aside; its previous generation serves, unmanaged until the configuration is fixed", "app", name, "pid", a.gen.Info().PID, "err", err)
		}
		a.publish()
	}
}

// failBroken ends a start of an app set aside for its configuration (see
// setAside): Failed, nothing spawned, the tracked generation (a
// predecessor's, if any) left as it is; exited describes that
// generation's exit ("" for none).
func (a *appOwner) failBroken(exited string) {
	a.cancelTimer()
	a.state = status.Failed
	switch {
	case exited != "":
		a.message = fmt.Sprintf("%s; the previous supervisor's generation exited (%s) and is not restarted", a.broken, exited)
	case a.gen == nil:
		a.message = a.broken + "; not started"
	}
	a.answerStart(&StartError{App: a.cfg.Name, Reason: a.broken})
}

// repairs reports whether app is set aside for its configuration and an
// update brings it back through repair.
func (m *Manager) repairs(app string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.apps[app]
	return s != nil && s.broken != ""
}

// repair brings an app set aside for its configuration back under
// management with cfg, its valid table: a new owner runs it (see
// replaceOwner); a predecessor's generation it tracked is replaced by a
// new generation as at recovery (see recoverReload), serving until the new
// one passes the gate; an app without one starts when it was meant to run.
// It returns the reload's or the start's error.
func (m *Manager) repair(ctx context.Context, cfg *config.App) error {
	old, err := m.owner(cfg.Name)
	if err != nil {
		return err
	}
	if _, err := m.replaceOwner(ctx, old, cfg); err != nil {
		return err
	}
	m.mu.Lock()
	s := m.apps[cfg.Name]
	s.broken = ""
	a := s.owner
	m.mu.Unlock()
	if a.snap.Load().MasterPID == 0 {
		return nil // replaceOwner started it if it was meant to run
	}
	return m.recoverReload(ctx, a, s.recoverDir)
}

// applyRepair applies u, a change of an app set aside for its
// configuration, u.App its valid table: a restart on new listeners as
// applyChange does (the predecessor's generation is stopped, a new one
// starts), or else repair.
func (m *Manager) applyRepair(ctx context.Context, u *appUpdate, progress reload.Progress) error {
	if u.Action != config.ActionRestart {
		return m.repair(ctx, u.App)
	}
	err := m.applyChange(ctx, u, progress)
	m.mu.Lock()
	m.apps[u.Name].broken = ""
	m.mu.Unlock()
	return err
}

// repairUnchanged repairs the apps of plan set aside for their
// configuration that the new configuration gives a valid, unchanged table
// (a missing file was put back) and marks them changed in plan; errors go
// to errs by app.
func (m *Manager) repairUnchanged(ctx context.Context, plan []*appUpdate, errs map[string]error) {
	for _, u := range plan {
		if u.Change != config.Unchanged || u.App == nil || !m.repairs(u.Name) {
			continue
		}
		u.Change, u.Action = config.Changed, config.ActionReload
		errs[u.Name] = m.repair(ctx, u.App)
	}
}
