package supervise

import (
	"context"
	"fmt"
	"slices"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
)

// adopts reports whether app tracks its orphans' serving generation (see
// Options.Orphans): it is recorded and alive, and the app's sockets are
// held (taken from the orphans, or systemd's) unless it has none.
func (m *Manager) adopts(opts Options, app *config.App) bool {
	if opts.Orphans == nil || opts.Restore != nil {
		return false
	}
	if _, _, ok := opts.Orphans.adoptable(app.Name); !ok {
		return false
	}
	_, held := opts.Sockets[app.Name]
	return held || len(app.Listen) == 0
}

// adoptOrphans makes a's tracked generation its orphans' serving one
// (Starting, counted as handed over: Start does not start it) and has
// Start replace it by a new generation of the release it recovers to.
func (m *Manager) adoptOrphans(a *appOwner, o *Orphans) {
	name := a.cfg.Name
	_, dir, _ := o.adoptable(name)
	g, _ := o.adopt(name, a.cfg.StopTimeout)
	a.gen = g
	a.state = StateStarting
	a.attempted = true
	a.message = fmt.Sprintf("recovering: %s serves until a new generation passes the gate", g)
	a.publish()
	m.restored[name] = true
	m.recovering[name] = dir
	if gated := o.apps[name].Gated; gated != "" {
		m.facts.setGated(name, gated)
	}
	m.logger.Warn("recovery: tracking the previous supervisor's serving generation", "app", name, "pid", g.pid, "release", dir)
}

// recoverSteering rebuilds the BPF steering of app's TCP listeners on the
// sockets taken from its orphans, with the BPF objects the predecessor
// recorded in o (see listen.RecoverSteered): it returns the sockets to hold
// (a new holder in place of each taken socket it steers, which it closes)
// and their steering, one entry per socket (nil: shared). A listener that
// cannot be steered stays shared, logged with why.
func (m *Manager) recoverSteering(app *config.App, taken []*Socket, o *Orphans) ([]*Socket, []steered) {
	held := slices.Clone(taken)
	gens := make([]steered, len(taken))
	if app.Steering == config.SteeringShared || !hasTCP(app) {
		return held, gens
	}
	why := m.bpfWhy()
	for i, s := range taken {
		if s.Spec.Network != config.NetTCP {
			continue
		}
		if why != "" {
			m.logger.Warn("recovery: BPF steering unavailable; the listener is shared", "app", app.Name, "listener", s.Spec.Raw, "why", why)
			continue
		}
		ids := o.steering(app.Name, s.Spec.Raw)
		if ids == nil {
			m.logger.Warn("recovery: the previous supervisor recorded no BPF steering; the listener is shared", "app", app.Name, "listener", s.Spec.Raw)
			continue
		}
		g, holder, err := listen.RecoverSteered(s.Spec, s, *ids, orphanGenID)
		if err != nil {
			m.logger.Warn("recovery: BPF steering not rebuilt; the listener is shared", "app", app.Name, "listener", s.Spec.Raw, "err", err)
			continue
		}
		if err := s.Close(); err != nil {
			m.logger.Warn("recovery: close the taken socket", "app", app.Name, "listener", s.Spec.Raw, "err", err)
		}
		held[i], gens[i] = holder, bpfSteered{g}
	}
	return held, gens
}

// recoverApp replaces a's adopted orphan generation by a new generation
// of release dir, through a reload: swap (restart for an app configured to
// restart, which must not overlap). The orphans serve until the new
// generation passes the gate and the steering switches to it; then they
// are drained. If it fails, they go on serving.
func (m *Manager) recoverApp(ctx context.Context, a *appOwner, dir string) {
	s := config.StrategySwap
	if a.cfg.Reload.Strategy == config.StrategyRestart {
		s = config.StrategyRestart
	}
	msg := reloadMsg{call: newCall(), strategy: &s, dir: dir, recovery: true}
	if err := a.send(ctx, msg); err != nil {
		m.logger.Error("recovery: no new generation took over; the previous supervisor's processes serve", "app", a.cfg.Name, "err", err)
		return
	}
	m.logger.Info("recovery: a new generation took over from the previous supervisor's processes", "app", a.cfg.Name, "release", dir)
}
