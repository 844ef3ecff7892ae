// Package config turns one TOML file into validated, typed values: the desired
// state of the supervisor. It is pure: it starts no process and binds no socket.
// Every error names the file, the line where known, and the key or app.
package config

import (
	"os"
	"path/filepath"
	"time"

	"github.com/gunisup/supervisor/reload/strategy"
)

// Config is a validated configuration file.
type Config struct {
	// Path is the file the configuration was read from (absolute).
	Path       string
	Supervisor Supervisor
	// Apps in the order their tables appear in the file: apps start in this
	// order and stop in the reverse order.
	Apps []*App
	// Groups are the [group.NAME] tables, sorted by name.
	Groups []Group
	// Broken holds, by app name, the problems of the apps LoadApart kept
	// although their own tables are invalid (each an *Errors). Load and
	// Parse never set it. A broken app's other fields are as far as they
	// could be read: it must not be started.
	Broken map[string]error
}

// App returns the app named name, or nil.
func (c *Config) App(name string) *App {
	for _, a := range c.Apps {
		if a.Name == name {
			return a
		}
	}
	return nil
}

// Supervisor holds the [supervisor] table.
type Supervisor struct {
	// ControlSocket is the path of the control API's Unix socket.
	ControlSocket string
	// ControlGroup, when set, makes the socket 0660 with that group, and
	// members of the group may connect; otherwise the socket is 0600.
	ControlGroup string
	// ControlGID is ControlGroup's gid, resolved at load; meaningful only
	// when ControlGroup is set.
	ControlGID int
	// HTTP is the health and metrics listen address (host:port); "" disables.
	HTTP string
	// HTTPWebConfig is an optional exporter-toolkit web-config file (TLS, basic auth).
	HTTPWebConfig string
	// ShutdownTimeout bounds the whole graceful stop of all apps.
	ShutdownTimeout time.Duration
	// ExitWith names an app whose exit ends the supervisor with that app's exit
	// code (single-app containers); "" means the supervisor runs until told to stop.
	ExitWith string
	// RunDir holds per-app runtime files (pidfiles for usr2). Default /run/gunisup.
	RunDir string
	// PassEnv names further variables of the supervisor's environment that
	// every app inherits, beyond the fixed allow-list (PATH, LANG, ...).
	PassEnv []string

	// LogFormat is the format of the supervisor's own log: LogFormatText
	// or LogFormatJSON.
	LogFormat string
	// Steering is the default of every app's `steering` key.
	Steering Steering
}

// Kind is what an app runs.
type Kind int

const (
	// KindGunicorn runs a Gunicorn master from a virtualenv on held sockets.
	KindGunicorn Kind = iota
	// KindProcess runs a plain command (a Celery worker, say).
	KindProcess
)

func (k Kind) String() string {
	switch k {
	case KindGunicorn:
		return "gunicorn"
	case KindProcess:
		return "process"
	}
	return "unknown"
}

// RestartPolicy says when an exited app is started again.
type RestartPolicy int

const (
	// RestartAlways restarts after any exit that the supervisor did not ask for.
	RestartAlways RestartPolicy = iota
	// RestartOnFailure restarts after a non-zero exit code or a signal.
	RestartOnFailure
	// RestartNever leaves the app stopped (or exited) after it exits.
	RestartNever
)

func (r RestartPolicy) String() string {
	switch r {
	case RestartAlways:
		return "always"
	case RestartOnFailure:
		return "on-failure"
	case RestartNever:
		return "never"
	}
	return "unknown"
}

// App is one [app.NAME] table. Each field's `update` tag says how an update
// applies a change to it (see Compare): "inplace" (the supervisor's
// handling only: the processes are not touched), "reload" (what a
// generation runs), "restart" (the app's sockets or kind) or "ignore" (where
// in the file, which is no change). A test fails for a field without one.
type App struct {
	Name string `update:"reload" key:"app"`
	Kind Kind   `update:"restart" key:"kind"`
	// Line is the line of the app's table header in the file (for messages).
	Line int `update:"ignore" key:"app"`

	// Virtualenv is an absolute path; "" for none. Its bin/ goes first on PATH.
	Virtualenv string `update:"reload" key:"virtualenv"`
	// Directory is the working directory as written (may be a symlink such as
	// /srv/web/current); each generation resolves it when it starts.
	Directory string `update:"reload" key:"directory"`
	// Command is argv for KindProcess; argv[0] is resolved in the virtualenv's
	// bin/ first, then PATH. For KindGunicorn, Command optionally overrides the
	// gunicorn executable (default <virtualenv>/bin/gunicorn).
	Command []string `update:"reload" key:"command"`
	// WSGI is Gunicorn's APP_MODULE (KindGunicorn).
	WSGI string `update:"reload" key:"wsgi"`
	// Workers is Gunicorn's --workers; 0 leaves Gunicorn's default. With
	// a range (`workers = "MIN..MAX"`) it is MIN.
	Workers int `update:"reload" key:"workers"`
	// WorkersMax is MAX of a workers range, 0 for a fixed count: the
	// supervisor then scales the workers between Workers and WorkersMax
	// (TTIN and TTOU to the master), and a new generation starts at the
	// current target.
	WorkersMax int `update:"inplace" key:"workers"`
	// MaxWorkerRSS is max_worker_rss in bytes, 0 for none: a worker whose
	// resident memory stays above it is sent TERM (one at a time) and
	// Gunicorn's master replaces it.
	MaxWorkerRSS int64 `update:"inplace" key:"max_worker_rss"`
	// Args are extra Gunicorn arguments.
	Args []string `update:"reload" key:"args"`
	// Listen are the sockets the supervisor binds and holds for this app.
	Listen []Listener `update:"restart" key:"listen"`
	// Env is added to the environment after EnvFile; values may hold {app}
	// and {release} (see ExpandEnv).
	Env map[string]string `update:"reload" key:"env"`
	// EnvFile is a KEY=VALUE file read at each start with ReadEnvFile; ""
	// for none.
	EnvFile string `update:"reload" key:"env_file"`

	// Identity is who the app runs as (user, group, allow_root).
	Identity Identity `update:"reload"`
	// Limits are umask, nice, oom_score_adjust and rlimits.
	Limits Limits `update:"reload"`

	Restart RestartPolicy `update:"inplace" key:"restart"`
	// Required: the app counts for readiness (READY=1, /readyz). Default true.
	Required bool `update:"inplace" key:"required"`
	// Autostart: the app starts with the supervisor. Default true.
	Autostart bool `update:"inplace" key:"autostart"`
	// Instances is the `instances` key (process apps): Parse replaces an app
	// with N > 1 by N apps named NAME:0..NAME:N-1.
	Instances int `update:"inplace" key:"instances"`
	// InstanceOf is the [app.NAME] an instance came from ("" for an app
	// without instances); Instance is its number.
	InstanceOf string `update:"inplace" key:"instances"`
	Instance   int    `update:"inplace" key:"instances"`
	// After names apps that start before this one and stop after it.
	After []string `update:"inplace" key:"after"`
	// Requires names apps this one needs; they order starts and stops as
	// After does.
	Requires []string `update:"inplace" key:"requires"`

	// StopSignal is sent first on stop (default SIGTERM); KILL after StopTimeout.
	StopSignal  os.Signal     `update:"inplace" key:"stop_signal"`
	StopTimeout time.Duration `update:"inplace" key:"stop_timeout"`
	// StartTimeout bounds how long a new generation may take to become ready.
	StartTimeout time.Duration `update:"inplace" key:"start_timeout"`
	// StartSettle is how long a process app's generation must run before
	// its start counts (supervisord's startsecs); an exit sooner is a
	// failed start. Below StartTimeout; Gunicorn apps do not use it.
	StartSettle time.Duration `update:"inplace" key:"start_settle"`

	Backoff Backoff `update:"inplace"`
	Reload  Reload  `update:"inplace"`
	Health  Health  `update:"inplace"`
	// Steering is how new connections reach the app's generations.
	Steering Steering `update:"inplace" key:"steering"`
	// Log is where the app's output goes.
	Log AppLog `update:"reload"`
	// Routes is how its requests are measured by route (Gunicorn apps).
	Routes RouteMetrics `update:"reload"`

	// Statsd is true when the supervisor should run its statsd bridge for
	// this app (Gunicorn apps whose Args carry no --statsd-host of their own).
	Statsd bool `update:"reload" key:"args"`
}

// Backoff is the restart policy's timing.
type Backoff struct {
	// Initial delay after the first crash, doubling up to Max.
	Initial time.Duration `key:"backoff_initial"`
	Max     time.Duration `key:"backoff_max"`
	// StableAfter: a generation that ran this long resets the delay.
	StableAfter time.Duration `key:"stable_after"`
	// CrashWindow and CrashLimit: more than CrashLimit exits within
	// CrashWindow mark the app crash-looping (still retried at Max).
	CrashWindow time.Duration `key:"crash_window"`
	CrashLimit  int           `key:"crash_limit"`
}

// Reload is [app.NAME.reload].
type Reload struct {
	// Strategy is one of reload/strategy's registry, valid for the app's
	// kind.
	Strategy strategy.Strategy `key:"reload.strategy"`
	// Timeout bounds a whole reload.
	Timeout time.Duration `key:"reload.timeout"`
	// KeepPrevious is how long a swap keeps the generation it replaced
	// booted, unsteered, for `supctl rollback` to steer back to (0: it is
	// drained and stopped at once). Only the swap strategy keeps one.
	KeepPrevious time.Duration `update:"inplace" key:"reload.keep_previous"`
	// Canary is the canary every reload and deploy asked for by a user
	// runs (keys canary = "10%,50%" and canary_for; off when canary is
	// unset); supctl's --canary replaces it, and --strategy skips it.
	Canary strategy.Canary `key:"reload.canary"`
	// CanaryLimits are the limits a canary is judged by.
	CanaryLimits CanaryLimits
}

// CanaryLimits are the limits of [app.NAME.reload] a canary generation is
// judged by against the serving one; a zero field takes the default (see
// package apm, Thresholds).
type CanaryLimits struct {
	// ErrorRise: error rate points (0.01 = 1 point) above the old one's.
	ErrorRise float64 `key:"reload.canary_error_rise"`
	// P99Factor: a route's p99 above this many times the old one's (and
	// above the old one's + apdex_t/5).
	P99Factor float64 `key:"reload.canary_p99_factor"`
	// ApdexDrop: Apdex below the old one's minus this.
	ApdexDrop float64 `key:"reload.canary_apdex_drop"`
	// MinRequests: the canary's requests before a worse judgement may end
	// a step early.
	MinRequests int `key:"reload.canary_min_requests"`
}

// Health is [app.NAME.health]. Exactly one of Path, TCP, Command is set, or
// none (Enabled false: readiness is "a worker answered a TCP connect" for
// Gunicorn, "still running after StartSettle" for processes).
type Health struct {
	Enabled bool `key:"-"`
	// Path is an HTTP GET path through the generation's own probe listener; 2xx passes.
	Path string `key:"health.path"`
	// Host is the Host header for HTTP checks (default "localhost").
	Host    string   `key:"health.host"`
	TCP     bool     `key:"health.tcp"`
	Command []string `key:"health.command"`

	Interval time.Duration `key:"health.interval"`
	Timeout  time.Duration `key:"health.timeout"`
	// HealthyAfter consecutive passes make a new generation healthy (reload gate).
	HealthyAfter int `key:"health.healthy_after"`
	// UnhealthyAfter consecutive failures make a running app unhealthy.
	UnhealthyAfter int `key:"health.unhealthy_after"`
	// RestartWhenUnhealthy restarts (by reload) an app that turned unhealthy.
	RestartWhenUnhealthy bool `key:"health.restart_when_unhealthy"`
}

// Network of a listener.
type Network int

const (
	NetTCP Network = iota
	NetUnix
	// NetSystemd is a socket passed by systemd socket activation (LISTEN_FDS),
	// looked up by name (LISTEN_FDNAMES) or position.
	NetSystemd
)

func (n Network) String() string {
	switch n {
	case NetTCP:
		return "tcp"
	case NetUnix:
		return "unix"
	case NetSystemd:
		return "systemd"
	}
	return "unknown"
}

// Listener is one listen address of an app.
type Listener struct {
	// Raw is the address as written in the file, e.g. "tcp://127.0.0.1:8000".
	Raw     string
	Network Network
	// Address is host:port (tcp), an absolute path (unix) or a name or
	// decimal position (systemd).
	Address string
	// Mode, Owner, Group apply to Unix sockets (app keys socket_mode,
	// socket_owner, socket_group). Owner/Group "" leave the supervisor's.
	Mode  os.FileMode
	Owner string
	Group string
	// OwnerUID and GroupGID are Owner's uid and Group's gid, resolved at
	// load; each is meaningful only when its name is set.
	OwnerUID int
	GroupGID int
	// Backlog is the listen(2) backlog (app key backlog, default 2048).
	Backlog int
	// File, Line and Key say where the listener is written (the
	// configuration file, the line of the listen key, "app.web.listen[1]"),
	// so that a failure to bind it names them; see Wrap.
	File string
	Line int
	Key  string
}

// GunicornBin returns the executable that starts a Gunicorn app: Command[0]
// when Command is set (already resolved to an absolute path by Parse),
// otherwise <Virtualenv>/bin/gunicorn.
func (a *App) GunicornBin() string {
	if len(a.Command) > 0 {
		return a.Command[0]
	}
	return filepath.Join(a.Virtualenv, "bin", "gunicorn")
}

// Deps returns the names of the apps a must start after: After and Requires
// together, without duplicates, in the order written; nil when there are none.
func (a *App) Deps() []string {
	var out []string
	seen := make(map[string]bool, len(a.After)+len(a.Requires))
	for _, list := range [][]string{a.After, a.Requires} {
		for _, n := range list {
			if !seen[n] {
				seen[n] = true
				out = append(out, n)
			}
		}
	}
	return out
}

// WaitFor returns, for each app of set by name, the apps of set it must
// wait for, in the order its Deps name them: those it depends on (the
// order of a start), or with reverse those that depend on it (the order
// of a stop). Dependencies outside set are left out; an app waiting for
// none has no entry.
func WaitFor(set []*App, reverse bool) map[string][]string {
	in := make(map[string]bool, len(set))
	for _, a := range set {
		in[a.Name] = true
	}
	out := make(map[string][]string, len(set))
	for _, a := range set {
		for _, d := range a.Deps() {
			switch {
			case !in[d]:
			case reverse:
				out[d] = append(out[d], a.Name)
			default:
				out[a.Name] = append(out[a.Name], d)
			}
		}
	}
	return out
}
