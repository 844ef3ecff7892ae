package gen

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"

	"github.com/gunisup/supervisor/apm"
	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/contain"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/launch"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/scale"
)

// Spawner starts, re-executes and adopts generations, and tidies up after
// them. It holds what every app shares; it is built once and is safe for
// concurrent use. Reaper, Homes and Logger are required.
type Spawner struct {
	// Reaper forks every generation and command and collects their exits.
	Reaper *proc.Reaper
	// Prober tells the Gunicorn version of an app's virtualenv (required
	// for Gunicorn apps).
	Prober *gunicorn.Prober
	// RunDir holds the apps' run directories (pidfiles, the access logger
	// class).
	RunDir string
	// StatsdAddr returns an app's statsd bridge address ("" for none; nil:
	// none for every app).
	StatsdAddr func(app string) string
	// PassEnv returns the supervisor's pass_env as configured now (nil:
	// none).
	PassEnv func() []string
	// Routes gets the access lines of the generations of every Gunicorn
	// app with route_metrics on (nil: no route metrics).
	Routes *apm.Set
	// Homes counts the live generations of each home and ends what they
	// leave behind.
	Homes  *contain.Homes
	Logger *slog.Logger
}

// App is what one app brings to a spawn, a re-exec or an adoption: its
// configuration, and what the caller holds for it.
type App struct {
	Cfg *config.App
	// Log captures the output of the app's generations.
	Log *logs.AppLog
	// Cgroup is the app's cgroup (nil: none); each generation gets a leaf
	// in it.
	Cgroup *proc.Cgroup
	// Workers is where the app's worker controller publishes its target
	// (nil: none): a Gunicorn master starts with that many workers.
	Workers *scale.Stats
}

// Request is one generation to start.
type Request struct {
	ID int
	// Dir is the resolved release directory ("": the app's directory,
	// resolved at the spawn).
	Dir string
	// Strategy is the app's reload strategy: a re-exec strategy (usr2)
	// starts a Gunicorn master that follows the app's release link.
	Strategy strategy.Strategy
	// FDs are the listening descriptors the generation gets, in order (see
	// listen.Table.Open); Stop are the held sockets its master's first stop
	// signal goes through (see Generation.Signal).
	FDs  []int
	Stop []*listen.Socket
}

// Spawn starts generation r.ID of app in r.Dir on the descriptors r.FDs
// (and, for a Gunicorn master, a private probe listener for its health
// checks). The returned generation's output is captured in app.Log and
// its access lines feed route metrics. On error nothing runs and the
// descriptors stay the caller's.
func (s *Spawner) Spawn(ctx context.Context, app App, r Request) (*Generation, error) {
	cfg := app.Cfg
	if r.Dir == "" {
		d, err := reload.ResolveDir(cfg.Directory)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", cfg.Name, err)
		}
		r.Dir = d
	}
	var probe *listen.Socket
	if cfg.Kind == config.KindGunicorn {
		p, err := listen.Probe()
		if err != nil {
			return nil, fmt.Errorf("app %s: probe listener: %w", cfg.Name, err)
		}
		probe = p
		// The generation holds its own copy; ours goes once it has started.
		defer probe.Close()
	}
	spec, err := s.buildSpec(ctx, app, r, probe)
	if err != nil {
		return nil, err
	}
	if cfg.Kind == config.KindGunicorn {
		if err := gunicorn.MakeRunDir(s.RunDir, cfg); err != nil {
			return nil, err
		}
	}
	g, err := s.fork(app, r, spec)
	if err != nil {
		return nil, err
	}
	if cfg.Kind == config.KindGunicorn {
		s.gunicornFacts(g, cfg, r)
	}
	if probe != nil {
		g.ProbeAddr = probe.Bound
	}
	s.Logger.Info("started", "app", cfg.Name, "generation", r.ID, "pid", g.PID, "dir", r.Dir, "argv", strings.Join(spec.Argv, " "))
	return g, nil
}

// buildSpec turns app into argv, environment and descriptors for
// generation r.ID (see launch.Process, launch.Gunicorn); probe is the
// generation's private listener (nil for processes).
func (s *Spawner) buildSpec(ctx context.Context, app App, r Request, probe *listen.Socket) (proc.Spec, error) {
	cfg := app.Cfg
	fds := slices.Clone(r.FDs)
	names := make([]string, len(fds))
	for i := range names {
		names[i] = cfg.Name
	}
	if probe != nil {
		fds = append(fds, probe.FD())
		names = append(names, "probe")
	}
	env, err := s.env(cfg, r.Dir, launch.PWD(cfg, r.Dir, r.Strategy.ReExec()))
	if err != nil {
		return proc.Spec{}, err
	}
	if cfg.Kind == config.KindProcess {
		return launch.Process(cfg, env, r.Dir, fds, names)
	}
	if err := launch.CheckGunicorn(cfg); err != nil {
		return proc.Spec{}, err
	}
	v := s.Prober.Version(ctx, cfg, launch.As(cfg, env, r.Dir))
	cfg = scale.WorkersFor(cfg, app.Workers)
	return launch.Gunicorn(cfg, env, r.Dir, fds, s.pidfile(cfg, r.ID), s.statsd(cfg.Name), v)
}

// fork starts spec as generation r.ID of app: with an access pipe when
// the app has route metrics, in a home of its own (a leaf of app's
// cgroup, or an environment mark), its output captured.
func (s *Spawner) fork(app App, r Request, spec proc.Spec) (*Generation, error) {
	cfg := app.Cfg
	access, err := s.withAccessPipe(cfg, &spec)
	if err != nil {
		return nil, err
	}
	home, leaf, err := contain.New(cfg.Name, app.Cgroup, r.ID)
	if err != nil {
		s.startReading(cfg, access, r.ID, 0, r.Dir, true)
		return nil, err
	}
	if leaf != nil {
		spec.Cgroup = leaf.FD()
	}
	contain.Mark(cfg.Name, home, &spec)
	pid, exitCh, out, err := s.forkCaptured(app, r.ID, spec)
	reader := s.startReading(cfg, access, r.ID, pid, r.Dir, err != nil)
	if leaf != nil {
		if cerr := leaf.Close(); cerr != nil {
			s.Logger.Warn("spawn", "app", cfg.Name, "err", cerr)
		}
	}
	if err != nil {
		s.Homes.Close(cfg.Name, home)
		return nil, err
	}
	g := newGeneration(cfg.Name, r.ID, pid, exitCh, out, out.Done())
	g.access, g.home, g.Dir, g.PGID, g.outFD = reader, home, r.Dir, pid, fdsOf(out)
	s.Homes.Enter(home)
	return g, nil
}

// gunicornFacts records what a Gunicorn master g started by r is: its
// pidfile (removed once it exits), the held sockets its stop goes
// through, and whether a USR2 re-exec follows the app's release link.
func (s *Spawner) gunicornFacts(g *Generation, cfg *config.App, r Request) {
	g.Pidfile = s.pidfile(cfg, r.ID)
	s.removePidfilesAtExit(g)
	g.socks = r.Stop
	// buildSpec set PWD = cfg.Directory for usr2; Gunicorn keeps it only
	// if it names the directory the generation starts in.
	if r.Strategy.ReExec() && cfg.Directory != "" {
		now, err := reload.ResolveDir(cfg.Directory)
		g.FollowsLink = err == nil && now == r.Dir
	}
}

// forkCaptured starts spec with its stdout and stderr on two pipes whose
// read ends app's log captures as generation id (see logs.AppLog.Start).
func (s *Spawner) forkCaptured(app App, id int, spec proc.Spec) (int, <-chan proc.ExitInfo, *logs.Output, error) {
	var exitCh <-chan proc.ExitInfo
	pid, out, err := app.Log.Start(app.Cfg.Name, id, func(stdout, stderr int) (int, error) {
		pid, ch, err := s.Reaper.ForkExec(spec, stdout, stderr)
		exitCh = ch
		return pid, err
	})
	if err != nil {
		return 0, nil, nil, err
	}
	return pid, exitCh, out, nil
}

// pidfile is where generation id of app writes its master's pid: a name
// of this supervisor's run (its pid, which a self-upgrade keeps along with
// the generation numbers), never that of an orphan a killed predecessor
// left running.
func (s *Spawner) pidfile(app *config.App, id int) string {
	return gunicorn.Pidfile(s.RunDir, app.Name, os.Getpid(), id)
}

// removePidfilesAtExit removes g's pidfiles from the run directory once g
// has exited, where they still name its master (gunicorn.RemovePidfiles):
// a killed or crashed master leaves them behind. Call it once g.Pidfile is
// set.
func (s *Spawner) removePidfilesAtExit(g *Generation) {
	pidfile, pid := g.Pidfile, g.PID
	go func() {
		<-g.Done()
		if err := gunicorn.RemovePidfiles(pidfile, pid); err != nil {
			s.Logger.Warn("pidfile of an exited master left in run_dir", "app", g.App, "generation", g.ID, "err", err)
		}
	}()
}

// env builds the environment of app's processes started in the resolved
// release directory dir with PWD pwd from the supervisor's own environment
// and pass_env (see launch.Env).
func (s *Spawner) env(app *config.App, dir, pwd string) ([]string, error) {
	var pass []string
	if s.PassEnv != nil {
		pass = s.PassEnv()
	}
	return launch.Env(app, dir, pwd, os.Environ(), pass)
}

// statsd is app's statsd bridge address ("" for none).
func (s *Spawner) statsd(app string) string {
	if s.StatsdAddr == nil {
		return ""
	}
	return s.StatsdAddr(app)
}

// Prefetch starts the Gunicorn version probe of every Gunicorn app among
// apps in the background, so that their first spawns find the answer
// ready or in flight instead of running the probe themselves. An app whose
// directory or environment does not resolve is skipped (its spawn says
// why).
func (s *Spawner) Prefetch(ctx context.Context, apps []*config.App) {
	for _, app := range apps {
		if app.Kind != config.KindGunicorn {
			continue
		}
		dir, err := reload.ResolveDir(app.Directory)
		if err != nil {
			continue
		}
		env, err := s.env(app, dir, dir)
		if err != nil {
			continue
		}
		s.Prober.Prefetch(ctx, app, launch.As(app, env, dir))
	}
}

// Command runs the command health checks of App (Run is a
// health.CommandRunner): in the app's environment and directory, as its
// user with its limits, reaped by the Spawner's reaper.
type Command struct {
	Spawner *Spawner
	App     *config.App
}

// Run runs argv and returns its output and its exit status as a shell
// reports it, or an error when the command could not be run.
func (c Command) Run(ctx context.Context, argv []string) ([]byte, int, error) {
	dir, err := reload.ResolveDir(c.App.Directory)
	if err != nil {
		return nil, -1, err
	}
	env, err := c.Spawner.env(c.App, dir, dir)
	if err != nil {
		return nil, -1, err
	}
	spec, err := launch.Command(c.App, env, dir, argv)
	if err != nil {
		return nil, -1, err
	}
	out, info, err := c.Spawner.Reaper.OutputSpec(ctx, spec)
	if err != nil {
		return out, -1, err
	}
	return out, info.ShellCode(), nil
}
