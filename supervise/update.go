package supervise

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/status"
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
	p, err := config.PlanUpdate(m.Config(), next, only)
	if err != nil {
		return nil, err
	}
	plan := make([]*appUpdate, len(p.Apps))
	for i, u := range p.Apps {
		plan[i] = &appUpdate{AppUpdate: u}
	}
	if err := m.openForUpdate(plan); err != nil {
		return nil, err
	}
	errs := map[string]error{}
	m.install(p.Merged, plan)
	m.removeApps(ctx, plan, errs)
	var changed []*appOwner
	updates := map[*appOwner]*appUpdate{}
	for _, u := range plan {
		if u.Change == config.Changed {
			changed = append(changed, u.owner)
			updates[u.owner] = u
		}
	}
	for name, err := range ordered(changed, false, func(a *appOwner) error {
		u := updates[a]
		if m.repairs(u.Name) {
			return m.applyRepair(ctx, u, progress)
		}
		return m.applyChange(ctx, u, progress)
	}) {
		errs[name] = err
	}
	m.repairUnchanged(ctx, plan, errs)
	m.startAdded(ctx, plan, errs)
	m.syncConfig()
	out := make([]UpdateResult, len(plan))
	for i, u := range plan {
		out[i] = UpdateResult{AppDiff: u.AppDiff, Err: errs[u.Name]}
		if u.Change != config.Unchanged {
			progress(fmt.Sprintf("%s: %s", u.Name, u.Outcome(out[i].Err)))
		}
	}
	return out, nil
}

// appUpdate is one app's part of an update in progress: its plan (its
// diff entry and its table in the new configuration), what openForUpdate
// opened for it (nil: nothing) and, once install ran, its owner (the one
// running before the update for a removed or changed app, nil when it had
// none).
type appUpdate struct {
	config.AppUpdate
	set   *appSet
	owner *appOwner
}

// openForUpdate opens the full set of each added app of plan (see openApp)
// and the listeners, steered as at start, of each app whose listen
// addresses changed, into their entries' set; on error it closes what it
// opened and clears the sets.
func (m *Manager) openForUpdate(plan []*appUpdate) error {
	for _, u := range plan {
		var set *appSet
		var err error
		switch {
		case u.Change == config.Added:
			set, err = m.openApp(u.App, nil)
		case u.Change == config.Changed && u.Action == config.ActionRestart:
			set = &appSet{}
			set.table, err = listen.Open(u.App, nil, m.bpfWhy, m.logger)
		default:
			continue
		}
		if err != nil {
			for _, v := range plan {
				if v.set != nil {
					err = errors.Join(err, v.set.close())
				}
				v.set = nil
			}
			return err
		}
		u.set = set
	}
	return nil
}

// install makes merged the running configuration, registers the added
// apps' owners (not yet running) and sets, and gives each entry of plan
// its owner; removed apps stay registered, last, until removeApps has
// stopped them.
func (m *Manager) install(merged *config.Config, plan []*appUpdate) {
	for _, u := range plan {
		if u.Change == config.Added {
			u.owner = newAppOwner(m, u.App)
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg = merged
	for _, u := range plan {
		if u.Change == config.Added {
			m.installApp(u.Name, u.set).owner = u.owner
		} else if s := m.apps[u.Name]; s != nil {
			u.owner = s.owner
		}
	}
	order := make([]*appOwner, 0, len(m.order)+1)
	for _, app := range merged.Apps {
		order = append(order, m.apps[app.Name].owner)
	}
	for _, a := range m.order {
		if !slices.ContainsFunc(merged.Apps, func(c *config.App) bool { return c.Name == a.cfg.Name }) {
			order = append(order, a)
		}
	}
	m.order = order
}

// removeApps stops the removed apps of plan (in their stop order), ends
// their owners and closes their sockets; errors go to errs by app (their
// route metrics are the daemon's to drop).
func (m *Manager) removeApps(ctx context.Context, plan []*appUpdate, errs map[string]error) {
	var set []*appOwner
	for _, u := range plan {
		if u.Change != config.Removed {
			continue
		}
		if u.owner == nil {
			errs[u.Name] = fmt.Errorf("%w: %q", ErrNoSuchApp, u.Name)
			continue
		}
		set = append(set, u.owner)
	}
	for name, err := range m.stopOrdered(ctx, set) {
		errs[name] = err
	}
	for _, a := range set {
		name := a.cfg.Name
		if _, _, err := a.end(ctx); err != nil {
			errs[name] = errors.Join(errs[name], err)
			continue
		}
		m.mu.Lock()
		m.order = slices.DeleteFunc(m.order, func(o *appOwner) bool { return o == a })
		s := m.apps[name]
		table := s.table
		s.owner, s.table = nil, nil
		m.mu.Unlock()
		if err := table.Close(); err != nil {
			errs[name] = errors.Join(errs[name], fmt.Errorf("app %s: close listeners: %w", name, err))
		}
	}
}

// applyChange gives a changed app its new table u.App, then reloads or
// restarts it as u.Action says when it is meant to run; u.set holds its
// new listeners for ActionRestart (the old ones close once it restarted).
func (m *Manager) applyChange(ctx context.Context, u *appUpdate, progress reload.Progress) error {
	set, cfg := u.set, u.App
	if set == nil {
		set = &appSet{}
	}
	a, err := m.replaceOwner(ctx, u.owner, cfg)
	if err != nil {
		return errors.Join(err, set.close())
	}
	running := a.snap.Load().Wanted
	switch u.Action {
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
func (m *Manager) startAdded(ctx context.Context, plan []*appUpdate, errs map[string]error) {
	var set []*appOwner
	for _, u := range plan {
		if u.Change != config.Added {
			continue
		}
		a := u.owner
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

// handoffMsg asks an owner to give its state to the owner that replaces it
// (an update changed the app's configuration) and to end its goroutine
// without touching the processes.
type handoffMsg struct {
	call
	out *ownerState
}

// handoff is the owner's side of a replacement. It refuses (ErrBusy, and
// the owner runs on) while a reload, a restart or a stop is in progress;
// otherwise it fills m.out, answers and reports true: the owner must end.
// A scheduled restart is dropped: the successor starts the app instead.
func (a *appOwner) handoff(m handoffMsg) bool {
	if a.reload != nil || len(a.retiring) > 0 || a.state == status.Stopping {
		m.reply <- fmt.Errorf("%w: app %s: a reload, restart or stop is in progress", ErrBusy, a.cfg.Name)
		return false
	}
	a.cancelPending()
	st := a.ownerState
	if st.gen == nil && st.state != status.Stopped {
		st.state = status.Stopped // backing off: the successor starts at once
	}
	if a.broken != "" && st.gen != nil {
		st.state = status.Starting // a predecessor's generation, which repair replaces
	}
	st.health.busy = false // a check in flight reports to this owner, which is gone
	if k := a.kept; k != nil {
		close(k.stop) // its watcher reports to this owner, which is gone
		st.kept = &keptGen{gen: k.gen, until: k.until}
	}
	*m.out = st
	m.reply <- nil
	return true
}

// adopt gives a new owner, before its goroutine runs, the state of the one
// it replaces; a generation still starting is waited for again, a kept
// one until the same time.
func (a *appOwner) adopt(ctx context.Context, st ownerState) {
	kept := st.kept
	st.kept = nil
	if st.reloads == nil {
		st.reloads = a.reloads
	}
	a.ownerState = st
	if a.state == status.Starting && a.gen != nil {
		a.awaitReady(ctx, a.gen)
	}
	if kept != nil {
		a.watchKept(ctx, kept)
	}
	a.publish()
}

// end hands a's state over (see handoff) and returns it once a's goroutine
// ended, with whether the app was meant to run (read from a's last
// snapshot, which handoff leaves as it was).
func (a *appOwner) end(ctx context.Context) (st ownerState, wanted bool, err error) {
	if err := a.send(ctx, handoffMsg{call: newCall(), out: &st}); err != nil {
		return st, false, err
	}
	<-a.exited
	return st, a.snap.Load().Wanted, nil
}

// replaceOwner swaps old, app cfg.Name's owner, for one running cfg and
// returns it: the running generation passes to it untouched. An app that
// was meant to run but had no generation (backing off) is started (an
// error then comes with the new owner, installed). It returns ErrBusy (no
// owner) while a reload, restart or stop of the app runs.
func (m *Manager) replaceOwner(ctx context.Context, old *appOwner, cfg *config.App) (*appOwner, error) {
	st, wanted, err := old.end(ctx)
	if err != nil {
		return nil, err
	}
	a := newAppOwner(m, cfg)
	a.adopt(m.runCtx, st)
	m.mu.Lock()
	m.apps[cfg.Name].owner = a
	for i, o := range m.order {
		if o == old {
			m.order[i] = a
		}
	}
	m.mu.Unlock()
	go a.run(m.runCtx)
	if wanted && st.gen == nil {
		return a, a.send(ctx, startMsg{newCall()})
	}
	return a, nil
}
