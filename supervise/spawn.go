package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
)

// envDenied are variables the supervisor never passes to apps: systemd's
// protocol variables belong to the supervisor (it gives Gunicorn its own
// sockets), and Gunicorn's re-exec variables would confuse a fresh master.
var envDenied = map[string]bool{
	"NOTIFY_SOCKET": true, "WATCHDOG_USEC": true, "WATCHDOG_PID": true,
	"LISTEN_PID": true, "LISTEN_FDS": true, "LISTEN_FDNAMES": true,
	"GUNICORN_FD": true, "GUNICORN_PID": true, "PYTHONHOME": true,
	"SUPERVISOR_UPGRADE_STATE": true, "SUPCTL_SOCKET": true,
}

// childEnv builds an app's environment: the supervisor's own minus denied
// variables, the virtualenv, the env_file, the app's env, PWD.
func childEnv(app *config.App, pwd string, extra map[string]string) ([]string, error) {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if !envDenied[k] {
			env[k] = v
		}
	}
	if app.Virtualenv != "" {
		env["VIRTUAL_ENV"] = app.Virtualenv
		path := env["PATH"]
		if path == "" {
			path = "/usr/local/bin:/usr/bin:/bin"
		}
		env["PATH"] = filepath.Join(app.Virtualenv, "bin") + ":" + path
	}
	if app.EnvFile != "" {
		fromFile, err := config.ParseEnvFile(app.EnvFile)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", app.Name, err)
		}
		for k, v := range fromFile {
			env[k] = v
		}
	}
	for k, v := range app.Env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	env["PWD"] = pwd
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// gunicornVersion asks the virtualenv's interpreter which Gunicorn it imports.
// It returns 0,0 when that cannot be told (no virtualenv python).
func (m *Manager) gunicornVersion(ctx context.Context, app *config.App, env []string, dir string) (int, int) {
	py := filepath.Join(app.Virtualenv, "bin", "python")
	if app.Virtualenv == "" || isExecutable(py) != nil {
		return 0, 0
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	out, info, err := m.reaper.Output(ctx, []string{py, "-c", "import gunicorn; print(gunicorn.__version__)"}, env, dir)
	if err != nil || info.Code != 0 {
		return 0, 0
	}
	parts := strings.SplitN(strings.TrimSpace(string(out)), ".", 3)
	if len(parts) < 2 {
		return 0, 0
	}
	maj, err1 := strconv.Atoi(parts[0])
	min, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return 0, 0
	}
	return maj, min
}

// pidfile is where generation id of app writes its master's pid. Each
// generation started by the supervisor has its own (two swap generations run
// side by side); a USR2 master re-execs the same argv, so it writes
// "<pidfile>.2" and renames it over the old one's when promoted.
func (m *Manager) pidfile(app *config.App, id int) string {
	return filepath.Join(m.runDir, app.Name+".g"+strconv.Itoa(id)+".pid")
}

// buildSpec turns an app into argv, environment and descriptors for one
// generation. probe is the generation's private listener (nil for processes).
// A Gunicorn master gets its sockets as GUNICORN_FD=3,4 GUNICORN_PID=-1 (it
// treats itself as a just-promoted USR2 child and keeps them across USR2); a
// process gets systemd's LISTEN_FDS, with LISTEN_PID set by an exec shim.
func (m *Manager) buildSpec(ctx context.Context, app *config.App, id int, dir string, probe *Socket, strategy config.Strategy) (proc.Spec, error) {
	socks := m.sockets[app.Name]
	var fds []int
	var names []string
	for _, s := range socks {
		if err := s.Relink(); err != nil {
			return proc.Spec{}, fmt.Errorf("app %s: %w", app.Name, err)
		}
		fd := s.FD()
		if fd < 0 {
			return proc.Spec{}, fmt.Errorf("app %s: listener %s is closed", app.Name, s.Spec.Raw)
		}
		fds = append(fds, fd)
		names = append(names, app.Name)
	}
	if probe != nil {
		fds = append(fds, probe.FD())
		names = append(names, "probe")
	}
	// Gunicorn's USR2 re-exec chdirs to $PWD when it names the same
	// directory: for usr2 apps PWD is the configured (symlinked) directory so
	// the re-exec follows `current` to the new release. A swap generation
	// gets the resolved release path, so a worker restarted while a newer
	// release is deployed never loads half of the new tree.
	pwd := dir
	if strategy == config.StrategyUSR2 && app.Directory != "" {
		pwd = app.Directory
	}
	env, err := childEnv(app, pwd, nil)
	if err != nil {
		return proc.Spec{}, err
	}
	fdList := make([]string, len(fds))
	for i := range fds {
		fdList[i] = strconv.Itoa(3 + i)
	}
	if app.Kind == config.KindProcess {
		argv0, err := lookPath(app.Command[0], envLookup(env, "PATH"))
		if err != nil {
			return proc.Spec{}, fmt.Errorf("app %s: %w", app.Name, err)
		}
		argv := append([]string{argv0}, app.Command[1:]...)
		if len(fds) > 0 {
			// LISTEN_PID must be the app's own pid: an exec shim sets it.
			env = append(env, "LISTEN_FDS="+strconv.Itoa(len(fds)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
			argv = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$@"`, "sh"}, argv...)
		}
		return proc.Spec{Argv: argv, Env: env, Dir: dir, Files: fds}, nil
	}

	bin := app.GunicornBin()
	if err := isExecutable(bin); err != nil {
		return proc.Spec{}, fmt.Errorf("app %s: gunicorn: %w", app.Name, err)
	}
	maj, min := m.gunicornVersion(ctx, app, env, dir)
	argv := []string{bin}
	if app.Workers > 0 {
		argv = append(argv, "--workers", strconv.Itoa(app.Workers))
	}
	argv = append(argv, "--pid", m.pidfile(app, id))
	if maj > 25 || (maj == 25 && min >= 1) {
		argv = append(argv, "--no-control-socket")
	}
	if addr := m.statsdAddr(app.Name); addr != "" {
		argv = append(argv, "--statsd-host", addr)
	}
	argv = append(argv, app.Args...)
	argv = append(argv, app.WSGI)
	env = append(env, "GUNICORN_FD="+strings.Join(fdList, ","), "GUNICORN_PID=-1")
	return proc.Spec{Argv: argv, Env: env, Dir: dir, Files: fds}, nil
}

func envLookup(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}

// spawn starts generation id of app in the resolved dir (resolving
// app.Directory when dir is ""). The returned generation's output is captured.
func (m *Manager) spawn(ctx context.Context, app *config.App, id int, dir string, strategy config.Strategy) (*Generation, error) {
	if dir == "" {
		d, err := resolveDir(app.Directory)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", app.Name, err)
		}
		dir = d
	}
	var probe *Socket
	if app.Kind == config.KindGunicorn {
		p, err := listen.Probe()
		if err != nil {
			return nil, fmt.Errorf("app %s: probe listener: %w", app.Name, err)
		}
		probe = p
		// The generation holds its own copy; ours goes once it has started.
		defer probe.Close()
	}
	spec, err := m.buildSpec(ctx, app, id, dir, probe, strategy)
	if err != nil {
		return nil, err
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, fmt.Errorf("app %s: output pipe: %w", app.Name, err)
	}
	pid, exitCh, err := m.reaper.ForkExec(spec, p[1])
	unix.Close(p[1])
	if err != nil {
		unix.Close(p[0])
		return nil, fmt.Errorf("app %s: %w", app.Name, err)
	}
	t := &tail{max: 40}
	eof := make(chan struct{})
	go capture(os.NewFile(uintptr(p[0]), app.Name+" output"), app.Name, id, m.sink, t, eof)
	g := newGeneration(app.Name, id, pid, exitCh, t, eof)
	g.Dir = dir
	g.PGID = pid
	g.outFD = p[0]
	if app.Kind == config.KindGunicorn {
		g.Pidfile = m.pidfile(app, id)
		// buildSpec set PWD = app.Directory for usr2; Gunicorn keeps it only
		// if it names the directory the generation starts in.
		if strategy == config.StrategyUSR2 && app.Directory != "" {
			now, err := resolveDir(app.Directory)
			g.FollowsLink = err == nil && now == dir
		}
	}
	if probe != nil {
		g.ProbeAddr = probe.Bound
	}
	m.logger.Info("started", "app", app.Name, "generation", id, "pid", pid, "dir", dir, "argv", strings.Join(spec.Argv, " "))
	return g, nil
}
