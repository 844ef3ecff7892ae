package supervise

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
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

// spawnSpec is everything one fork+exec needs.
type spawnSpec struct {
	Argv []string // Argv[0] absolute
	Env  []string
	Dir  string
	// Files become the child's fds 3, 4, ... in order.
	Files []int
}

// forkExec starts spec through the reaper (so its exit cannot be missed), in
// a new process group, with stdin /dev/null and stdout+stderr on outW. The
// child inherits no other descriptor: every fd the supervisor opens is CLOEXEC
// and ForkExec dups only the ones listed.
func (r *Reaper) forkExec(spec spawnSpec, outW int) (int, <-chan ExitInfo, error) {
	devnull, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("open /dev/null: %w", err)
	}
	defer unix.Close(devnull)
	files := []uintptr{uintptr(devnull), uintptr(outW), uintptr(outW)}
	for _, fd := range spec.Files {
		files = append(files, uintptr(fd))
	}
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   spec.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true},
	}
	return r.Start(func() (int, error) {
		pid, err := syscall.ForkExec(spec.Argv[0], spec.Argv, attr)
		if err != nil {
			return 0, fmt.Errorf("start %s in %s: %w", spec.Argv[0], spec.Dir, err)
		}
		return pid, nil
	})
}

// Output runs argv to completion through the reaper and returns what it
// wrote to stdout and stderr (at most 64 KiB), killing it when ctx ends.
func (r *Reaper) Output(ctx context.Context, argv []string, env []string, dir string) ([]byte, ExitInfo, error) {
	if len(argv) == 0 {
		return nil, ExitInfo{}, fmt.Errorf("empty command")
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, ExitInfo{}, fmt.Errorf("pipe: %w", err)
	}
	// Non-blocking read end: the runtime poller then lets a deadline end a
	// read that a grandchild holding the pipe open would block forever.
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, ExitInfo{}, fmt.Errorf("pipe: %w", err)
	}
	rf := os.NewFile(uintptr(p[0]), "output")
	pid, exitCh, err := r.forkExec(spawnSpec{Argv: argv, Env: env, Dir: dir}, p[1])
	unix.Close(p[1])
	if err != nil {
		rf.Close()
		return nil, ExitInfo{}, err
	}
	outCh := make(chan []byte, 1)
	go func() {
		defer rf.Close()
		buf := make([]byte, 0, 4096)
		tmp := make([]byte, 4096)
		for {
			n, err := rf.Read(tmp)
			if len(buf) < 64*1024 {
				buf = append(buf, tmp[:n]...)
			}
			if err != nil {
				outCh <- buf
				return
			}
		}
	}()
	// After the exit, output still in the pipe is read for at most a second:
	// a descendant that kept the pipe open (a daemonized grandchild) must not
	// hold the caller.
	drain := func() []byte {
		_ = rf.SetReadDeadline(time.Now().Add(time.Second)) // a poller-backed pipe accepts deadlines
		return <-outCh
	}
	var info ExitInfo
	select {
	case info = <-exitCh:
	case <-ctx.Done():
		signalTree(pid, unix.SIGKILL)
		info = <-exitCh
		return drain(), info, fmt.Errorf("%s: %w", argv[0], ctx.Err())
	}
	return drain(), info, nil
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
func (m *Manager) buildSpec(ctx context.Context, app *config.App, id int, dir string, probe *Socket, strategy config.Strategy) (spawnSpec, error) {
	socks := m.sockets[app.Name]
	var fds []int
	var names []string
	for _, s := range socks {
		if err := s.Relink(); err != nil {
			return spawnSpec{}, fmt.Errorf("app %s: %w", app.Name, err)
		}
		fd := s.FD()
		if fd < 0 {
			return spawnSpec{}, fmt.Errorf("app %s: listener %s is closed", app.Name, s.Spec.Raw)
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
		return spawnSpec{}, err
	}
	fdList := make([]string, len(fds))
	for i := range fds {
		fdList[i] = strconv.Itoa(3 + i)
	}
	if app.Kind == config.KindProcess {
		argv0, err := lookPath(app.Command[0], envLookup(env, "PATH"))
		if err != nil {
			return spawnSpec{}, fmt.Errorf("app %s: %w", app.Name, err)
		}
		argv := append([]string{argv0}, app.Command[1:]...)
		if len(fds) > 0 {
			// LISTEN_PID must be the app's own pid: an exec shim sets it.
			env = append(env, "LISTEN_FDS="+strconv.Itoa(len(fds)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
			argv = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$@"`, "sh"}, argv...)
		}
		return spawnSpec{Argv: argv, Env: env, Dir: dir, Files: fds}, nil
	}

	bin := app.GunicornBin()
	if err := isExecutable(bin); err != nil {
		return spawnSpec{}, fmt.Errorf("app %s: gunicorn: %w", app.Name, err)
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
	return spawnSpec{Argv: argv, Env: env, Dir: dir, Files: fds}, nil
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
		p, err := bindProbe()
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
	pid, exitCh, err := m.reaper.forkExec(spec, p[1])
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
