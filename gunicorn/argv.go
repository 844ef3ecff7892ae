package gunicorn

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/gunisup/supervisor/config"
)

// Pidfile is where generation id of app, started by the supervisor run
// run (its process id), writes its master's pid, in the app's own run
// directory (config.AppRunDir), which its user may write. Each generation
// has its own (two swap generations run side by side), and so has each
// supervisor run: the masters a killed supervisor left running keep their
// pidfiles while its successor starts its own generation 1, which Gunicorn
// would refuse to start ("Already running on PID") on a live master's
// pidfile. A USR2 master re-execs the same argv, so it writes
// "<pidfile>.2" and renames it over the old one's when promoted.
func Pidfile(runDir, app string, run, id int) string {
	return filepath.Join(config.AppRunDir(runDir, app), app+".s"+strconv.Itoa(run)+".g"+strconv.Itoa(id)+".pid")
}

// Argv is the command line of a master of app: its gunicorn executable,
// --workers, --pid pidfile, --no-control-socket where v has a control
// socket (two generations overlap during a reload), --statsd-host when
// statsd is set, the app's own args and its WSGI target.
func Argv(app *config.App, pidfile, statsd string, v Version) []string {
	argv := []string{app.GunicornBin()}
	if app.Workers > 0 {
		argv = append(argv, "--workers", strconv.Itoa(app.Workers))
	}
	argv = append(argv, "--pid", pidfile)
	if v.HasControlSocket() {
		argv = append(argv, "--no-control-socket")
	}
	if statsd != "" {
		argv = append(argv, "--statsd-host", statsd)
	}
	argv = append(argv, app.Args...)
	return append(argv, app.WSGI)
}

// ListenEnv hands a master n inherited sockets on fds 3, 4, ...: as
// GUNICORN_FD with GUNICORN_PID=-1 the master treats itself as a
// just-promoted USR2 child, takes the descriptors and keeps them across its
// own USR2.
func ListenEnv(n int) []string {
	fds := make([]string, n)
	for i := range fds {
		fds[i] = strconv.Itoa(3 + i)
	}
	return []string{"GUNICORN_FD=" + strings.Join(fds, ","), "GUNICORN_PID=-1"}
}
