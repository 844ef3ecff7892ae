package supervise

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/contain"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/launch"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/scale"
)

// pidfile is where generation id of app writes its master's pid: a name
// of this supervisor's run (its pid, which a self-upgrade keeps along with
// the generation numbers), never that of an orphan a killed predecessor
// left running.
func (m *Manager) pidfile(app *config.App, id int) string {
	return gunicorn.Pidfile(m.runDir, app.Name, os.Getpid(), id)
}

// buildSpec turns an app into argv, environment and descriptors for one
// generation, and returns the sockets its master's stop goes through (see
// Generation.socks). probe is the generation's private listener (nil for
// processes); use says which listening sockets it gets (see genSockets).
// The spec itself comes from launch (launch.Process, launch.Gunicorn).
func (m *Manager) buildSpec(ctx context.Context, app *config.App, id int, dir string, probe *listen.Socket, strategy strategy.Strategy, use socketUse) (proc.Spec, []*listen.Socket, error) {
	fds, socks, err := m.genSockets(app.Name, id, use)
	if err != nil {
		return proc.Spec{}, nil, err
	}
	names := make([]string, len(fds))
	for i := range names {
		names[i] = app.Name
	}
	if probe != nil {
		fds = append(fds, probe.FD())
		names = append(names, "probe")
	}
	env, err := m.childEnv(app, dir, launch.PWD(app, dir, strategy.ReExec()))
	if err != nil {
		return proc.Spec{}, nil, err
	}
	if app.Kind == config.KindProcess {
		spec, err := launch.Process(app, env, dir, fds, names)
		if err != nil {
			return proc.Spec{}, nil, err
		}
		return spec, socks, nil
	}
	if err := launch.CheckGunicorn(app); err != nil {
		return proc.Spec{}, nil, err
	}
	v := m.prober.Version(ctx, app, launch.As(app, env, dir))
	app = scale.WorkersFor(app, m.workerStats(app.Name))
	spec, err := launch.Gunicorn(app, env, dir, fds, m.pidfile(app, id), m.statsdAddr(app.Name), v)
	if err != nil {
		return proc.Spec{}, nil, err
	}
	return spec, socks, nil
}

// childEnv builds the environment of app's processes started in the
// resolved release directory dir with PWD pwd from the supervisor's own
// environment and pass_env (see launch.Env).
func (m *Manager) childEnv(app *config.App, dir, pwd string) ([]string, error) {
	return launch.Env(app, dir, pwd, os.Environ(), m.Config().Supervisor.PassEnv)
}

// spawn starts generation id of app in the resolved dir (resolving
// app.Directory when dir is ""), on the listening sockets use says. The
// returned generation's output is captured.
func (m *Manager) spawn(ctx context.Context, app *config.App, id int, dir string, strategy strategy.Strategy, use socketUse) (*Generation, error) {
	if dir == "" {
		d, err := reload.ResolveDir(app.Directory)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", app.Name, err)
		}
		dir = d
	}
	var probe *listen.Socket
	if app.Kind == config.KindGunicorn {
		p, err := listen.Probe()
		if err != nil {
			return nil, fmt.Errorf("app %s: probe listener: %w", app.Name, err)
		}
		probe = p
		// The generation holds its own copy; ours goes once it has started.
		defer probe.Close()
	}
	spec, socks, err := m.buildSpec(ctx, app, id, dir, probe, strategy, use)
	if err != nil {
		return nil, err
	}
	if app.Kind == config.KindGunicorn {
		if err := gunicorn.MakeRunDir(m.runDir, app); err != nil {
			return nil, err
		}
	}
	access, err := m.withAccessPipe(app, &spec)
	if err != nil {
		return nil, err
	}
	home, leaf, err := contain.New(app.Name, m.view(app.Name).cgroup, id)
	if err != nil {
		m.startReading(app, access, id, 0, dir, true)
		return nil, err
	}
	if leaf != nil {
		spec.Cgroup = leaf.FD()
	}
	contain.Mark(app.Name, home, &spec)
	pid, exitCh, out, err := m.forkCaptured(app.Name, id, spec)
	reader := m.startReading(app, access, id, pid, dir, err != nil)
	if leaf != nil {
		if cerr := leaf.Close(); cerr != nil {
			m.logger.Warn("spawn", "app", app.Name, "err", cerr)
		}
	}
	if err != nil {
		m.homes.Close(app.Name, home)
		return nil, err
	}
	g := newGeneration(app.Name, id, pid, exitCh, out, out.Done())
	g.access = reader
	g.home = home
	m.homes.Enter(home)
	g.Dir = dir
	g.PGID = pid
	g.outFD = fdsOf(out)
	if app.Kind == config.KindGunicorn {
		g.Pidfile = m.pidfile(app, id)
		m.removePidfilesAtExit(g)
		g.socks = socks
		// buildSpec set PWD = app.Directory for usr2; Gunicorn keeps it only
		// if it names the directory the generation starts in.
		if strategy.ReExec() && app.Directory != "" {
			now, err := reload.ResolveDir(app.Directory)
			g.FollowsLink = err == nil && now == dir
		}
	}
	if probe != nil {
		g.ProbeAddr = probe.Bound
	}
	m.logger.Info("started", "app", app.Name, "generation", id, "pid", pid, "dir", dir, "argv", strings.Join(spec.Argv, " "))
	return g, nil
}

// removePidfilesAtExit removes g's pidfiles from run_dir once g has
// exited, where they still name its master (gunicorn.RemovePidfiles): a
// killed or crashed master leaves them behind. Call it once g.Pidfile is
// set.
func (m *Manager) removePidfilesAtExit(g *Generation) {
	pidfile, pid := g.Pidfile, g.PID
	go func() {
		<-g.Done()
		if err := gunicorn.RemovePidfiles(pidfile, pid); err != nil {
			m.logger.Warn("pidfile of an exited master left in run_dir", "app", g.App, "generation", g.ID, "err", err)
		}
	}()
}

// appCommand runs the command health checks of app (see health.New): in the
// app's environment and directory, as its user with its limits, reaped by
// the Manager's reaper. It returns the output, the exit status as a shell
// reports it, and an error when the command could not be run.
type appCommand struct {
	m   *Manager
	app *config.App
}

func (c appCommand) run(ctx context.Context, argv []string) ([]byte, int, error) {
	dir, err := reload.ResolveDir(c.app.Directory)
	if err != nil {
		return nil, -1, err
	}
	env, err := c.m.childEnv(c.app, dir, dir)
	if err != nil {
		return nil, -1, err
	}
	spec, err := launch.Command(c.app, env, dir, argv)
	if err != nil {
		return nil, -1, err
	}
	out, info, err := c.m.reaper.OutputSpec(ctx, spec)
	if err != nil {
		return out, -1, err
	}
	return out, info.ShellCode(), nil
}
