package supervise

import (
	"context"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
)

// spawn starts generation r.ID of app (see gen.Spawner.Spawn) on the
// listening sockets use says (see genSockets). On error the sockets bound
// for it stay open until releaseGen.
func (m *Manager) spawn(ctx context.Context, app *config.App, r gen.Request, use socketUse) (*gen.Generation, error) {
	fds, stop, err := m.genSockets(app.Name, r.ID, use)
	if err != nil {
		return nil, err
	}
	r.FDs, r.Stop = fds, stop
	return m.spawner.Spawn(ctx, m.genApp(app), r)
}

// genApp is what app's slot brings to its generations (see gen.App): its
// log, its cgroup and its worker statistics.
func (m *Manager) genApp(app *config.App) gen.App {
	v := m.view(app.Name)
	return gen.App{Cfg: app, Log: v.log, Cgroup: v.cgroup, Workers: m.workerStats(app.Name)}
}

// stopTimeout is app's stop_timeout as configured now (30 s for an app no
// longer configured).
func (m *Manager) stopTimeout(app string) time.Duration {
	if a := m.Config().App(app); a != nil {
		return a.StopTimeout
	}
	return 30 * time.Second
}
