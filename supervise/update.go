package supervise

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/reload"
)

// UpdateResult is one app's part of an update: what the diff said and how
// applying it ended (Err nil: done).
type UpdateResult struct {
	config.AppDiff
	Err error
}

// Update applies next, a new validated configuration, to the running apps,
// or only to the apps named in only (all apps when empty): added apps
// start (autostart), removed ones stop and their sockets close, changed ones
// take their new table as config.Compare's action says (in place: the
// processes are untouched; reload: a zero-downtime reload of a Gunicorn
// app, a restart of a process; restart: on the new sockets), and unchanged
// ones are left alone. The [supervisor] table is not applied.
//
// Sockets for added apps and new addresses are bound first: if one cannot
// be, nothing changes and the error is returned. Otherwise it returns one
// result per app concerned, in diff order. Stop cancels an update in
// progress.
func (m *Manager) Update(ctx context.Context, next *config.Config, only []string, progress reload.Progress) ([]UpdateResult, error) {
	m.updateMu.Lock()
	defer m.updateMu.Unlock()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-m.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
	if !m.booted.Load() {
		return nil, errors.New("update: the supervisor is still starting its apps")
	}
	if progress == nil {
		progress = func(string) {}
	}
	cur := m.Config()
	plan, err := selectDiff(config.Compare(cur, next), only)
	if err != nil {
		return nil, err
	}
	opened, err := m.openForUpdate(plan, next)
	if err != nil {
		return nil, err
	}
	errs := map[string]error{}
	m.install(mergeConfig(cur, next, plan), plan, opened)
	m.removeApps(ctx, plan, errs)
	var changed []*appOwner
	for _, d := range plan {
		if d.Change == config.Changed {
			a, _ := m.owner(d.Name) // present: install keeps changed apps
			changed = append(changed, a)
		}
	}
	for name, err := range ordered(changed, false, func(a *appOwner) error {
		d := plan[slices.IndexFunc(plan, func(d config.AppDiff) bool { return d.Name == a.cfg.Name })]
		return m.applyChange(ctx, d, next.App(d.Name), opened[d.Name], progress)
	}) {
		errs[name] = err
	}
	m.startAdded(ctx, plan, errs)
	m.syncConfig()
	out := make([]UpdateResult, len(plan))
	for i, d := range plan {
		out[i] = UpdateResult{AppDiff: d, Err: errs[d.Name]}
		if d.Change != config.Unchanged {
			progress(fmt.Sprintf("%s: %s", d.Name, describe(out[i])))
		}
	}
	return out, nil
}

// describe is a one-line account of an app's update result.
func describe(r UpdateResult) string {
	s := r.Change.String()
	if r.Change == config.Changed {
		s += fmt.Sprintf(" %v: %s", r.Keys, r.Action)
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

// selectDiff keeps the diff entries of the apps in only (every entry when
// only is empty); a name that is neither in the running configuration nor
// in the new one is an error wrapping ErrNoSuchApp.
func selectDiff(d *config.Diff, only []string) ([]config.AppDiff, error) {
	if len(only) == 0 {
		return d.Apps, nil
	}
	var out []config.AppDiff
	for _, n := range only {
		i := slices.IndexFunc(d.Apps, func(a config.AppDiff) bool { return a.Name == n })
		if i < 0 {
			return nil, fmt.Errorf("%w: %q", ErrNoSuchApp, n)
		}
		out = append(out, d.Apps[i])
	}
	return out, nil
}

// mergeConfig is the configuration after applying plan to cur: next's
// version of each app in plan, cur's of the others; next's groups when
// every app is in plan, else cur's groups without removed apps. The
// [supervisor] table stays cur's.
func mergeConfig(cur, next *config.Config, plan []config.AppDiff) *config.Config {
	in := map[string]bool{}
	for _, d := range plan {
		in[d.Name] = true
	}
	out := &config.Config{Path: cur.Path, Supervisor: cur.Supervisor}
	for _, a := range next.Apps {
		if in[a.Name] || cur.App(a.Name) != nil {
			if in[a.Name] {
				out.Apps = append(out.Apps, a)
			} else {
				out.Apps = append(out.Apps, cur.App(a.Name))
			}
		}
	}
	for _, a := range cur.Apps {
		if next.App(a.Name) == nil && !in[a.Name] {
			out.Apps = append(out.Apps, a)
		}
	}
	if len(plan) == len(config.Compare(cur, next).Apps) {
		out.Groups = next.Groups
		return out
	}
	for _, g := range cur.Groups {
		g.Apps = slices.DeleteFunc(slices.Clone(g.Apps), func(n string) bool { return out.App(n) == nil })
		out.Groups = append(out.Groups, g)
	}
	return out
}

// openForUpdate opens the full set of each added app (see openApp) and the
// listeners, steered as at start, of each app whose listen addresses
// changed; on error it closes what it opened.
func (m *Manager) openForUpdate(plan []config.AppDiff, next *config.Config) (map[string]*appSet, error) {
	out := map[string]*appSet{}
	for _, d := range plan {
		var set *appSet
		var err error
		switch {
		case d.Change == config.Added:
			set, err = m.openApp(next.App(d.Name), nil, nil, false)
		case d.Change == config.Changed && d.Action == config.ActionRestart:
			set = &appSet{}
			set.table, err = m.openListeners(next.App(d.Name))
		default:
			continue
		}
		if err != nil {
			for _, s := range out {
				err = errors.Join(err, s.close())
			}
			return nil, err
		}
		out[d.Name] = set
	}
	return out, nil
}

// install makes merged the running configuration and registers the added
// apps' owners (not yet running) and sets; removed apps stay registered,
// last, until removeApps has stopped them.
func (m *Manager) install(merged *config.Config, plan []config.AppDiff, opened map[string]*appSet) {
	added := map[string]*appOwner{}
	for _, d := range plan {
		if d.Change == config.Added {
			added[d.Name] = newAppOwner(m, merged.App(d.Name))
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = merged
	for name, a := range added {
		m.installApp(name, opened[name]).owner = a
	}
	order := make([]*appOwner, 0, len(merged.Apps))
	for _, app := range merged.Apps {
		order = append(order, m.apps[app.Name].owner)
	}
	for _, a := range m.order {
		if merged.App(a.cfg.Name) == nil {
			order = append(order, a)
		}
	}
	m.order = order
}

// removeApps stops the removed apps of plan (in their stop order), ends
// their owners, closes their sockets and drops their route metrics; errors
// go to errs by app.
func (m *Manager) removeApps(ctx context.Context, plan []config.AppDiff, errs map[string]error) {
	var set []*appOwner
	for _, d := range plan {
		if d.Change == config.Removed {
			a, err := m.owner(d.Name)
			if err != nil {
				errs[d.Name] = err
				continue
			}
			set = append(set, a)
		}
	}
	for name, err := range m.stopOrdered(ctx, set) {
		errs[name] = err
	}
	for _, a := range set {
		name := a.cfg.Name
		var st ownerState
		if err := a.send(ctx, handoffMsg{call: newCall(), out: &st}); err != nil {
			errs[name] = errors.Join(errs[name], err)
			continue
		}
		<-a.exited
		m.mu.Lock()
		m.order = slices.DeleteFunc(m.order, func(o *appOwner) bool { return o == a })
		s := m.apps[name]
		table := s.table
		s.owner, s.table = nil, nil
		m.mu.Unlock()
		if err := table.Close(); err != nil {
			errs[name] = errors.Join(errs[name], fmt.Errorf("app %s: close listeners: %w", name, err))
		}
		if m.routes != nil {
			m.routes.Forget(name)
		}
	}
}

// applyChange gives a changed app its new table cfg, then reloads or
// restarts it as d.Action says when it is meant to run; set holds its new
// listeners for ActionRestart (the old ones close once it restarted).
func (m *Manager) applyChange(ctx context.Context, d config.AppDiff, cfg *config.App, set *appSet, progress reload.Progress) error {
	if set == nil {
		set = &appSet{}
	}
	if err := m.replaceOwner(ctx, cfg); err != nil {
		return errors.Join(err, set.close())
	}
	a, err := m.owner(cfg.Name)
	if err != nil {
		return errors.Join(err, set.close())
	}
	running := a.snap.Load().Wanted
	switch d.Action {
	case config.ActionReload:
		if !running {
			return nil
		}
		if cfg.Kind == config.KindGunicorn {
			return m.Reload(ctx, cfg.Name, nil, func(msg string) { progress(cfg.Name + ": " + msg) })
		}
		return a.send(ctx, restartMsg{newCall()})
	case config.ActionRestart:
		m.mu.Lock()
		s := m.apps[cfg.Name]
		old := s.table
		s.table = set.table
		m.mu.Unlock()
		if running {
			err = a.send(ctx, restartMsg{newCall()})
		}
		return errors.Join(err, old.Close())
	}
	return nil
}

// startAdded runs the owners of the added apps of plan and starts those
// with autostart, in their start order; errors go to errs by app.
func (m *Manager) startAdded(ctx context.Context, plan []config.AppDiff, errs map[string]error) {
	var set []*appOwner
	for _, d := range plan {
		if d.Change != config.Added {
			continue
		}
		a, err := m.owner(d.Name)
		if err != nil {
			errs[d.Name] = err
			continue
		}
		go a.run(m.runCtx)
		if a.cfg.Autostart {
			set = append(set, a)
		}
	}
	for name, err := range m.startOrdered(ctx, set) {
		errs[name] = err
	}
}

// syncConfig makes the running configuration's app tables those the owners
// run (an app whose replacement was refused keeps its old table, so that
// the next update finds the change again).
func (m *Manager) syncConfig() {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := *m.cfg
	c.Apps = slices.Clone(c.Apps)
	for i, app := range c.Apps {
		if s := m.apps[app.Name]; s != nil && s.owner != nil {
			c.Apps[i] = s.owner.cfg
		}
	}
	m.cfg = &c
}
