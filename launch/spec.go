package launch

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/proc"
)

// Credential is the uid, gid and supplementary groups app's processes take
// before exec, or nil when the app runs as the supervisor's own user.
func Credential(app *config.App) *syscall.Credential {
	id := app.Identity
	if !id.Switch() {
		return nil
	}
	groups := make([]uint32, len(id.Groups))
	for i, g := range id.Groups {
		groups[i] = uint32(g)
	}
	return &syscall.Credential{Uid: uint32(id.UID), Gid: uint32(id.GID), Groups: groups}
}

// Attrs are app's umask, nice, oom_score_adjust and rlimits for proc.
func Attrs(app *config.App) proc.Attrs {
	l := app.Limits
	a := proc.Attrs{Umask: l.Umask, Nice: l.Nice, OOMScoreAdj: l.OOMScoreAdj}
	for _, r := range l.Rlimits {
		a.Rlimits = append(a.Rlimits, proc.Rlimit{Resource: r.Resource, Value: r.Value})
	}
	return a
}

// As is how a helper of app (a probe of its virtualenv) runs: as the app
// itself would, with env, in dir, under its credentials and attributes.
func As(app *config.App, env []string, dir string) proc.Spec {
	return proc.Spec{Env: env, Dir: dir, Cred: Credential(app), Attrs: Attrs(app)}
}

// PWD is the PWD of a generation of app started in the resolved release
// directory dir. Gunicorn's USR2 re-exec chdirs to $PWD when it names the
// same directory: when reExec (the strategy re-execs the master) PWD is the
// configured (symlinked) directory so the re-exec follows `current` to the
// new release. Otherwise it is dir, so a worker restarted while a newer
// release is deployed never loads half of the new tree.
func PWD(app *config.App, dir string, reExec bool) string {
	if reExec && app.Directory != "" {
		return app.Directory
	}
	return dir
}

// Process is the spec of a process app in dir with environment env (see
// Env) and the listening descriptors fds, named by names for systemd's
// LISTEN_FDNAMES. Its command is looked up in env's PATH (see LookPath);
// with descriptors it gets LISTEN_FDS, with LISTEN_PID set by an exec
// shim. The error names the app and the command, or the variable or
// argument at fault when execve would refuse the spec (see fits).
func Process(app *config.App, env []string, dir string, fds []int, names []string) (proc.Spec, error) {
	argv0, err := LookPath(app.Command[0], Lookup(env, "PATH"))
	if err != nil {
		return proc.Spec{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	argv := append([]string{argv0}, app.Command[1:]...)
	if len(fds) > 0 {
		// LISTEN_PID must be the app's own pid: an exec shim sets it.
		env = append(env, "LISTEN_FDS="+strconv.Itoa(len(fds)), "LISTEN_FDNAMES="+strings.Join(names, ":"))
		argv = append([]string{"/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$@"`, "sh"}, argv...)
	}
	return fits(app, proc.Spec{Argv: argv, Env: env, Dir: dir, Files: fds, Cred: Credential(app), Attrs: Attrs(app)})
}

// CheckGunicorn returns an error naming app when its gunicorn executable
// (config.App.GunicornBin) is not an executable regular file.
func CheckGunicorn(app *config.App) error {
	if err := config.CheckExecutable(app.GunicornBin()); err != nil {
		return fmt.Errorf("app %s: gunicorn: %w", app.Name, err)
	}
	return nil
}

// Gunicorn is the spec of a Gunicorn master of app in dir with environment
// env (see Env) and the listening descriptors fds: gunicorn.Argv for
// Gunicorn version v writing its pid to pidfile and its metrics to statsd
// ("" for none), and gunicorn.ListenEnv. The error names the app and the
// variable or argument at fault when execve would refuse the spec (see
// fits).
func Gunicorn(app *config.App, env []string, dir string, fds []int, pidfile, statsd string, v gunicorn.Version) (proc.Spec, error) {
	argv := gunicorn.Argv(app, pidfile, statsd, v)
	env = append(env, gunicorn.ListenEnv(len(fds))...)
	return fits(app, proc.Spec{Argv: argv, Env: env, Dir: dir, Files: fds, Cred: Credential(app), Attrs: Attrs(app)})
}

// fits returns spec, or an error naming app and the variable or argument
// at fault when execve would refuse spec's command line and environment
// (E2BIG): an env_file grown since check is caught here, with its cause,
// rather than as an exec failure.
func fits(app *config.App, spec proc.Spec) (proc.Spec, error) {
	if err := config.CheckExecSize(spec.Argv, spec.Env, 0); err != nil {
		return proc.Spec{}, fmt.Errorf("app %s: %w", app.Name, err)
	}
	return spec, nil
}

// Command is the spec of a command argv run on app's behalf (a command
// health check) in dir with environment env: argv[0] looked up in env's
// PATH, as the app's user with its attributes.
func Command(app *config.App, env []string, dir string, argv []string) (proc.Spec, error) {
	argv0, err := LookPath(argv[0], Lookup(env, "PATH"))
	if err != nil {
		return proc.Spec{}, err
	}
	return proc.Spec{Argv: append([]string{argv0}, argv[1:]...), Env: env, Dir: dir, Cred: Credential(app), Attrs: Attrs(app)}, nil
}

// LookPath finds name in the directories of path (a PATH value) the way a
// shell would, for the child's PATH rather than the supervisor's: a name
// with a slash is taken as it is. It returns the first candidate that is an
// executable regular file (config.CheckExecutable). config resolves a
// command at load time in the virtualenv and the supervisor's PATH; this is
// the search at start time, in the environment the app gets.
func LookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		if err := config.CheckExecutable(name); err != nil {
			return "", err
		}
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			continue
		}
		p := filepath.Join(dir, name)
		if config.CheckExecutable(p) == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in PATH %s", name, path)
}
