package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/supervise"
)

// configurer serves the control API's reread and update verbs.
type configurer struct {
	m *supervise.Manager
	// after runs once an update has ended, applied or not.
	after func()
}

// loadNext reads the running configuration's file again; an invalid file
// is a *control.Error with code bad_request (its message names file:line).
func loadNext(m *supervise.Manager) (*config.Config, error) {
	next, err := config.Load(m.Config().Path)
	if err != nil {
		return nil, &control.Error{Code: control.CodeBadRequest, Err: fmt.Errorf("configuration not applied, nothing changed: %w", err)}
	}
	return next, nil
}

// Reread implements control.Configurer.
func (c configurer) Reread(ctx context.Context) (*control.RereadResponse, error) {
	next, err := loadNext(c.m)
	if err != nil {
		return nil, err
	}
	d := config.Compare(c.m.Config(), next)
	resp := &control.RereadResponse{Config: next.Path, Supervisor: d.Supervisor, Apps: make([]control.AppChange, len(d.Apps))}
	for i, a := range d.Apps {
		resp.Apps[i] = appChange(a)
	}
	return resp, nil
}

func appChange(a config.AppDiff) control.AppChange {
	ch := control.AppChange{App: a.Name, Change: a.Change.String(), Keys: a.Keys}
	if a.Change == config.Changed {
		ch.Action = a.Action.String()
	}
	return ch
}

// Update implements control.Configurer.
func (c configurer) Update(ctx context.Context, apps []string, progress control.Progress) control.Outcome {
	defer c.after()
	return outcome(update(ctx, c.m, apps, reload.Progress(progress)))
}

// update re-reads the configuration file and applies it to apps (every app
// when empty; see Manager.Update). An invalid file changes nothing. The
// error joins every app's failure.
func update(ctx context.Context, m *supervise.Manager, apps []string, progress reload.Progress) error {
	next, err := loadNext(m)
	if err != nil {
		return err
	}
	if d := config.Compare(m.Config(), next); len(d.Supervisor) > 0 {
		progress(fmt.Sprintf("[supervisor] %v changed: not applied until the supervisor restarts", d.Supervisor))
	}
	apps, err = resolveEither(m.Config(), next, apps)
	if err != nil {
		return wireError(err)
	}
	res, err := m.Update(ctx, next, apps, progress)
	if err != nil {
		return wireError(err)
	}
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, fmt.Errorf("app %s: %w", r.Name, r.Err))
		}
	}
	return errors.Join(errs...)
}

// pruneRemoved closes the statsd bridge and drops the route metrics of
// every app missing from the running configuration: one an update removed,
// or one opened for an app whose update then failed.
func (d *Daemon) pruneRemoved() {
	cfg := d.manager.Config()
	d.closeBridgesNotIn(cfg)
	d.routes.Prune(cfg)
}

// closeBridgesNotIn closes and forgets the statsd bridge of every app cfg
// does not have.
func (d *Daemon) closeBridgesNotIn(cfg *config.Config) {
	d.bridgesMu.Lock()
	defer d.bridgesMu.Unlock()
	for app, b := range d.bridges {
		if cfg.App(app) != nil {
			continue
		}
		if err := b.Close(); err != nil {
			d.Logger.Warn("close statsd bridge", "app", app, "err", err)
		}
		delete(d.bridges, app)
	}
}

// fileChangedNote is the line a reload of app prints when the file's table
// for app differs from the one running: a reload runs the configuration in
// force, and `supctl update APP` applies the file. "" when nothing differs
// or the file cannot be read.
func fileChangedNote(m *supervise.Manager, app string) string {
	next, err := config.Load(m.Config().Path)
	if err != nil {
		return ""
	}
	for _, a := range config.Compare(m.Config(), next).Apps {
		if a.Name == app && a.Change == config.Changed {
			return fmt.Sprintf("note: %s changed %s of %s; this reload runs the configuration in force; `supctl update %s` applies the file", m.Config().Path, a.Keys, app, app)
		}
	}
	return ""
}

// resolveEither expands targets (see config.Config.Resolve) with the edited
// configuration next, and with the running one cur for apps next removes;
// a target neither knows is an error wrapping config.ErrNoSuchApp.
func resolveEither(cur, next *config.Config, targets []string) ([]string, error) {
	var out []string
	for _, t := range targets {
		names, err := next.Resolve([]string{t})
		if err != nil {
			if names, err = cur.Resolve([]string{t}); err != nil {
				return nil, err
			}
		}
		for _, n := range names {
			if !slices.Contains(out, n) {
				out = append(out, n)
			}
		}
	}
	return out, nil
}
