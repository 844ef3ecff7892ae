package supervise

import (
	"context"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
)

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

// stopTimeout is app's stop_timeout as configured now (30 s for an app no
// longer configured).
func (m *Manager) stopTimeout(app string) time.Duration {
	if a := m.Config().App(app); a != nil {
		return a.StopTimeout
	}
	return 30 * time.Second
}
