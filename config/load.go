package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gunisup/supervisor/internal/defaults"
	"github.com/gunisup/supervisor/reload/strategy"
)

// Defaults of the [supervisor] table.
const (
	DefaultHTTP            = "127.0.0.1:9321"
	DefaultRunDir          = "/run/gunisup"
	DefaultShutdownTimeout = 30 * time.Second
)

// Defaults of an [app.NAME] table and its sub-tables.
const (
	DefaultSocketMode     os.FileMode = 0o660
	DefaultBacklog                    = 2048
	DefaultStopTimeout                = 30 * time.Second
	DefaultStartTimeout               = 60 * time.Second
	DefaultStartSettle                = time.Second
	DefaultBackoffInitial             = 100 * time.Millisecond
	DefaultBackoffMax                 = 30 * time.Second
	DefaultStableAfter                = 10 * time.Second
	DefaultCrashWindow                = 60 * time.Second
	DefaultCrashLimit                 = 5
	DefaultReloadTimeout              = 60 * time.Second
	DefaultHealthHost                 = "localhost"
	DefaultHealthInterval             = 5 * time.Second
	DefaultHealthTimeout              = 2 * time.Second
	DefaultHealthyAfter               = 3
	DefaultUnhealthyAfter             = 3
)

// Ceilings of the counts of an [app.NAME] table (see gunisup.toml(5)).
const (
	// MaxWorkers bounds workers: Gunicorn forks them all at each start.
	MaxWorkers = 1024
	// MaxBacklog bounds backlog: the kernel caps it at net.core.somaxconn.
	MaxBacklog = 65535
	// MaxCrashLimit bounds crash_limit.
	MaxCrashLimit = 1000
	// MaxHealthCount bounds healthy_after and unhealthy_after: at the
	// shortest interval, 100 checks take a second.
	MaxHealthCount = 100
)

// Load reads and validates the configuration file at path; see Parse.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		msg := err.Error()
		var pe *fs.PathError
		if errors.As(err, &pe) {
			msg = "cannot read: " + pe.Err.Error()
		}
		return nil, &Errors{List: []*Error{{File: path, Msg: msg, Err: err}}}
	}
	return Parse(path, data)
}

// Parse validates data as the contents of the configuration file at path,
// without reading path itself. It still checks the filesystem: that
// virtualenvs, directories, executables, env files, users and groups exist.
// Relative paths in the file are taken relative to the file's directory.
//
// It returns a complete Config or, when anything is wrong, a *Errors listing
// every problem found (one per line, FILE:LINE: KEY: MESSAGE), never both.
func Parse(path string, data []byte) (*Config, error) {
	cfg, errs := parse(path, data)
	if err := errs.err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

// parse is Parse's work: the configuration as far as it could be read
// (nil when the file or an included one cannot be decoded) and every
// problem found (an empty *Errors when none).
func parse(path string, data []byte) (*Config, *Errors) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, &Errors{List: []*Error{{File: path, Msg: fmt.Sprintf("cannot make path absolute: %v", err), Err: err}}}
	}
	d, derr := decode(path, string(data))
	if derr != nil {
		return nil, &Errors{List: []*Error{derr}}
	}
	p := &parser{file: path, lines: d.lines, files: []string{path}, dirs: []string{filepath.Dir(abs)}}
	p.errs = &Errors{files: p.files}
	keys := p.include(d)
	p.errs.files = p.files
	if len(p.errs.List) > 0 {
		return nil, p.errs // an included file is unreadable: its apps would be missing
	}
	cfg := &Config{Path: abs}
	root := p.table(nil, d.doc)
	cfg.Supervisor = p.supervisor(root.sub("supervisor"))
	cfg.Apps = expandInstances(p.apps(root, keys))
	cfg.Groups = p.groups(root.sub("group"))
	expandGroups(cfg.Groups, cfg.Apps)
	root.finish()
	p.crossChecks(cfg)
	p.orderChecks(cfg)
	return cfg, p.errs
}

func (p *parser) supervisor(t *table) Supervisor {
	s := Supervisor{
		ControlSocket:   defaults.ControlSocket,
		HTTP:            DefaultHTTP,
		ShutdownTimeout: DefaultShutdownTimeout,
		RunDir:          DefaultRunDir,
		LogFormat:       LogFormatText,
	}
	if t == nil {
		return s
	}
	if t.filePath("control_socket", &s.ControlSocket) && len(s.ControlSocket) > maxUnixPath {
		t.errf("control_socket", "path is %d bytes long, the limit is %d", len(s.ControlSocket), maxUnixPath)
	}
	if t.str("control_group", &s.ControlGroup) && s.ControlGroup != "" {
		gid, err := lookupGroup(s.ControlGroup)
		if err != nil {
			t.errf("control_group", "%v", err)
		}
		s.ControlGID = gid
	}
	if t.str("http", &s.HTTP) && s.HTTP != "" {
		if err := checkHostPort(s.HTTP); err != nil {
			t.errf("http", "invalid address %q: %v", s.HTTP, err)
		}
	}
	var webConfig string
	if t.str("http_web_config", &webConfig) && webConfig != "" {
		if t.filePath("http_web_config", &s.HTTPWebConfig) {
			if err := checkRegular(s.HTTPWebConfig); err != nil {
				t.errf("http_web_config", "%v", err)
			}
		}
	}
	t.get("include") // read by include
	t.duration("shutdown_timeout", &s.ShutdownTimeout)
	t.str("exit_with", &s.ExitWith)
	t.filePath("run_dir", &s.RunDir)
	s.PassEnv = passEnv(t)
	p.passEnv = s.PassEnv
	s.LogFormat = logFormat(t)
	readSteering(t, &s.Steering)
	p.steering = s.Steering
	t.finish()
	return s
}

// apps decodes the [app.NAME] tables in the order keys (MetaData.Keys)
// first mentions them.
func (p *parser) apps(root *table, keys []toml.Key) []*App {
	v, ok := root.get("app")
	if !ok {
		p.errs.add(&Error{File: p.file, Msg: "no app defined: add at least one [app.NAME] table"})
		return nil
	}
	all, ok := v.(map[string]any)
	if !ok {
		root.typeErr("app", "table of [app.NAME] tables", v)
		return nil
	}
	order := make([]string, 0, len(all))
	seen := make(map[string]bool, len(all))
	for _, k := range keys {
		if len(k) >= 2 && k[0] == "app" && !seen[k[1]] {
			if _, ok := all[k[1]]; ok {
				seen[k[1]] = true
				order = append(order, k[1])
			}
		}
	}
	if len(order) != len(all) {
		// Not expected: every key is in Keys. Keep every app anyway.
		for name := range all {
			if !seen[name] {
				order = append(order, name)
			}
		}
	}
	if len(order) == 0 {
		p.errf([]string{"app"}, "no app defined: add at least one [app.NAME] table")
		return nil
	}
	var apps []*App
	for _, name := range order {
		key := []string{"app", name}
		m, ok := all[name].(map[string]any)
		if !ok {
			p.errf(key, "want table, got %s", typeName(all[name]))
			continue
		}
		apps = append(apps, p.app(name, p.table(key, m)))
	}
	return apps
}

func (p *parser) app(name string, t *table) *App {
	a := &App{
		Steering:     p.steering,
		Name:         name,
		Line:         p.line(t.path),
		Restart:      RestartAlways,
		StopSignal:   syscall.SIGTERM,
		StopTimeout:  DefaultStopTimeout,
		StartTimeout: DefaultStartTimeout,
		StartSettle:  DefaultStartSettle,
		Directory:    p.dirOf(t.path),
		Backoff: Backoff{
			Initial:     DefaultBackoffInitial,
			Max:         DefaultBackoffMax,
			StableAfter: DefaultStableAfter,
			CrashWindow: DefaultCrashWindow,
			CrashLimit:  DefaultCrashLimit,
		},
	}
	if !validAppName(name) {
		p.errf(t.path, "invalid app name %q: use only letters, digits, '_', '.' and '-'", name)
	}
	gunicorn, process := appKind(t, a)
	venvOK := p.virtualenv(t, a)
	appDirectory(t, a)
	p.gunicornKeys(t, a, gunicorn, process)
	p.identity(t, a) // before the commands: they are resolved as the app's user
	appCommand(t, a, gunicorn, process, venvOK)
	hasListen := p.listeners(t, a, gunicorn)
	p.limits(t, a)
	p.environment(t, a)
	restartPolicy(t, a)
	lifecycle(t, a)
	instances(t, a)
	readSteering(t, &a.Steering)
	a.Reload = p.reload(t.sub("reload"), a.Kind)
	a.Health = p.health(t.sub("health"), a, venvOK, hasListen)
	a.Log = appLog(t)
	routeMetrics(t, a, gunicorn)
	instanceLogFile(t, a)
	t.finish()
	return a
}

// appKind reads `kind` into a and reports whether the app is known to be a
// Gunicorn app or a process; both are false when kind is invalid, so that no
// kind-specific error follows the kind's own.
func appKind(t *table, a *App) (gunicorn, process bool) {
	var kind string
	if t.str("kind", &kind) {
		switch kind {
		case "gunicorn":
			a.Kind = KindGunicorn
		case "process":
			a.Kind = KindProcess
		default:
			t.errf("kind", "unknown kind %q (want \"gunicorn\" or \"process\")", kind)
			return false, false
		}
	} else if t.has("kind") {
		return false, false
	}
	return a.Kind == KindGunicorn, a.Kind == KindProcess
}

// appDirectory reads `directory`, defaulting to the configuration file's
// directory, and checks that it exists.
func appDirectory(t *table, a *App) {
	if t.filePath("directory", &a.Directory) {
		if err := t.p.cached("dir", checkDir, a.Directory); err != nil {
			t.errf("directory", "%v", err)
		}
	} else if !t.has("directory") {
		if err := t.p.cached("dir", checkDir, a.Directory); err != nil {
			t.errf("directory", "%v (the default: the configuration file's directory)", err)
		}
	}
}

// gunicornKeys reads wsgi, workers and args: required or allowed for a
// Gunicorn app, an error for a process.
func (p *parser) gunicornKeys(t *table, a *App, gunicorn, process bool) {
	hasWSGI := t.str("wsgi", &a.WSGI)
	hasWorkers := t.workers(a)
	hasRSS := t.byteSize("max_worker_rss", &a.MaxWorkerRSS, MinWorkerRSS)
	hasArgs := t.strList("args", &a.Args)
	switch {
	case gunicorn:
		if a.WSGI == "" && (hasWSGI || !t.has("wsgi")) {
			t.errf("wsgi", "required for kind \"gunicorn\" (the APP_MODULE, e.g. \"app:app\")")
		}
		a.Statsd = true
		if hasArgs {
			p.gunicornArgs(t.key("args"), a)
		}
	case process:
		for _, k := range []struct {
			name string
			set  bool
		}{{"wsgi", hasWSGI}, {"workers", hasWorkers}, {"max_worker_rss", hasRSS}, {"args", hasArgs}} {
			if k.set {
				t.errf(k.name, "only valid for kind \"gunicorn\"")
			}
		}
	}
}

// appCommand reads `command`, resolving its executable in the virtualenv,
// and checks that a Gunicorn app without one has gunicorn in its virtualenv.
func appCommand(t *table, a *App, gunicorn, process, venvOK bool) {
	if t.strList("command", &a.Command) {
		if len(a.Command) == 0 || a.Command[0] == "" {
			t.errf("command", "must name an executable")
		} else if venvOK || a.Virtualenv == "" {
			if exe, err := resolveCommand(a.Command[0], a.Virtualenv, a.Directory, runnerOf(a)); err != nil {
				t.errf("command", "%v", err)
			} else {
				a.Command[0] = exe
			}
		}
	} else if process && !t.has("command") {
		t.errf("command", "required for kind \"process\"")
	}
	if !gunicorn || t.has("command") {
		return
	}
	if a.Virtualenv == "" && !t.has("virtualenv") {
		t.errf("virtualenv", "required for kind \"gunicorn\" unless command names the gunicorn executable")
	} else if venvOK {
		r := runnerOf(a)
		if err := t.p.cached(fmt.Sprint("exec as ", r.uid, r.gids), r.canExec, a.GunicornBin()); err != nil {
			t.errf("virtualenv", "%v (install gunicorn in the virtualenv, or set command)", err)
		}
	}
}

// restartPolicy reads restart, stop and backoff keys.
func restartPolicy(t *table, a *App) {
	var restart string
	if t.str("restart", &restart) {
		switch restart {
		case "always":
			a.Restart = RestartAlways
		case "on-failure":
			a.Restart = RestartOnFailure
		case "never":
			a.Restart = RestartNever
		default:
			t.errf("restart", "unknown policy %q (want \"always\", \"on-failure\" or \"never\")", restart)
		}
	}
	var sig string
	if t.str("stop_signal", &sig) {
		if s, ok := parseSignal(sig); ok {
			a.StopSignal = s
		} else {
			t.errf("stop_signal", "unknown signal %q (want one of TERM INT QUIT HUP USR1 USR2 KILL)", sig)
		}
	}
	t.duration("stop_timeout", &a.StopTimeout)
	t.duration("start_timeout", &a.StartTimeout)
	startSettle(t, a)
	initOK := t.duration("backoff_initial", &a.Backoff.Initial)
	maxOK := t.duration("backoff_max", &a.Backoff.Max)
	if (initOK || maxOK) && a.Backoff.Initial > a.Backoff.Max {
		name := "backoff_initial"
		if !initOK {
			name = "backoff_max"
		}
		t.errf(name, "backoff_initial (%v) exceeds backoff_max (%v)", a.Backoff.Initial, a.Backoff.Max)
	}
	t.duration("stable_after", &a.Backoff.StableAfter)
	t.duration("crash_window", &a.Backoff.CrashWindow)
	t.integer("crash_limit", &a.Backoff.CrashLimit, 1, MaxCrashLimit)
}

// startSettle reads start_settle: process apps only, and shorter than
// start_timeout (a start must be able to count before it times out).
func startSettle(t *table, a *App) {
	if !t.duration("start_settle", &a.StartSettle) {
		return
	}
	if a.Kind != KindProcess {
		t.errf("start_settle", "only valid for kind \"process\" (a Gunicorn app is started once a worker answers)")
	} else if a.StartSettle >= a.StartTimeout {
		t.errf("start_settle", "%v must be shorter than start_timeout (%v)", a.StartSettle, a.StartTimeout)
	}
}

// has reports whether name is present, whatever its value.
func (t *table) has(name string) bool {
	_, ok := t.m[name]
	return ok
}

// virtualenv reads and checks the virtualenv key; it returns true when the
// key is set and names a directory with bin/python.
func (p *parser) virtualenv(t *table, a *App) bool {
	if !t.filePath("virtualenv", &a.Virtualenv) {
		return false
	}
	if err := p.cached("dir", checkDir, a.Virtualenv); err != nil {
		t.errf("virtualenv", "%v", err)
		return false
	}
	py := filepath.Join(a.Virtualenv, "bin", "python")
	if err := p.cached("exists", checkExists, py); err != nil {
		t.errf("virtualenv", "%s: %v (not a virtualenv?)", py, pathErr(err))
		return false
	}
	return true
}

// ownedGunicornOptions are Gunicorn options that would fight the
// supervisor, with the reason given to the user.
var ownedGunicornOptions = []struct{ long, short, why string }{
	{"bind", "b", "the supervisor binds the sockets itself: use listen"},
	{"reuse-port", "", "the supervisor binds the sockets itself: use listen"},
	{"daemon", "D", "gunicorn must stay a child of the supervisor"},
	{"pid", "p", "the supervisor manages gunicorn's pidfile"},
}

// gunicornArgs rejects options the supervisor owns and clears a.Statsd when
// the app brings its own statsd target (--statsd-host). Long options are matched with
// argparse's abbreviations (--bi is --bind).
func (p *parser) gunicornArgs(key []string, a *App) {
	for i, arg := range a.Args {
		if arg == "--" {
			break
		}
		if name, ok := strings.CutPrefix(arg, "--"); ok {
			name, _, _ = strings.Cut(name, "=")
			for _, o := range ownedGunicornOptions {
				if len(name) >= 2 && strings.HasPrefix(o.long, name) {
					p.elemErrf(key, i, "%q is not allowed (%s)", arg, o.why)
				}
			}
			if len(name) >= len("statsd-h") && strings.HasPrefix("statsd-host", name) {
				a.Statsd = false
			}
			continue
		}
		if len(arg) >= 2 && arg[0] == '-' {
			for _, o := range ownedGunicornOptions {
				if o.short != "" && arg[1:2] == o.short {
					p.elemErrf(key, i, "%q is not allowed (%s)", arg, o.why)
				}
			}
		}
	}
}

// listeners reads listen and the socket_* and backlog keys. It returns
// whether listen is written and not empty, valid or not (so that a bad
// address is not reported a second time as a missing one).
func (p *parser) listeners(t *table, a *App, gunicorn bool) bool {
	mode := DefaultSocketMode
	t.octal("socket_mode", &mode)
	var owner, group string
	uid, gid := 0, 0
	if t.str("socket_owner", &owner) && owner != "" {
		var err error
		if uid, err = lookupUser(owner); err != nil {
			t.errf("socket_owner", "%v", err)
		}
	}
	if t.str("socket_group", &group) && group != "" {
		var err error
		if gid, err = lookupGroup(group); err != nil {
			t.errf("socket_group", "%v", err)
		}
	}
	backlog := DefaultBacklog
	t.integer("backlog", &backlog, 1, MaxBacklog)

	var raw []string
	listOK := t.strList("listen", &raw)
	switch {
	case gunicorn && !t.has("listen"):
		t.errf("listen", "required for kind \"gunicorn\" (at least one address)")
	case gunicorn && listOK && len(raw) == 0:
		t.errf("listen", "kind \"gunicorn\" needs at least one address")
	}
	if listOK {
		key := t.key("listen")
		for i, r := range raw {
			l, err := parseListen(r)
			if err != nil {
				p.elemErrf(key, i, "invalid listen address %q: %v", r, err)
				continue
			}
			l.File, l.Line = p.pos(key)
			l.Key = elemKey(key, i)
			if l.Network == NetUnix {
				if err := checkUnixPlace(l, p.cached); err != nil {
					p.elemErrf(key, i, "%q: %v", r, err)
					continue
				}
				l.Mode, l.Owner, l.Group, l.OwnerUID, l.GroupGID = mode, owner, group, uid, gid
			}
			l.Backlog = backlog
			a.Listen = append(a.Listen, l)
		}
	}
	return t.has("listen") && !(listOK && len(raw) == 0)
}

// environment reads env and env_file; the env file is checked and parsed
// now (ReadEnvFile, for the app's uid: identity runs first) so that its
// mistakes show up at check time, and again at each start.
func (p *parser) environment(t *table, a *App) {
	if t.strMap("env", &a.Env) {
		for _, k := range slices.Sorted(maps.Keys(a.Env)) {
			if k == "" || strings.ContainsAny(k, "=\x00") {
				t.p.errf(join(t.key("env"), []string{k}), "invalid variable name %q", k)
			} else if strings.ContainsRune(a.Env[k], 0) {
				t.p.errf(join(t.key("env"), []string{k}), "value contains a NUL byte")
			}
		}
	}
	var fromFile map[string]string
	if t.filePath("env_file", &a.EnvFile) {
		var ok bool
		if fromFile, ok = p.envFile(t, a); !ok {
			return
		}
	}
	p.execSize(t, a, fromFile)
}

// envFile reads a's env_file, reporting its mistakes at env_file; false
// when it has some.
func (p *parser) envFile(t *table, a *App) (map[string]string, bool) {
	env, err := ReadEnvFile(a.EnvFile, a.Identity.UID)
	if err == nil {
		return env, true
	}
	var list *Errors
	if errors.As(err, &list) {
		for _, e := range list.List {
			f, l := p.pos(t.key("env_file"))
			p.errs.add(&Error{File: f, Line: l, Key: keyString(t.key("env_file")), Msg: e.Error(), Err: e})
		}
		return nil, false
	}
	t.errf("env_file", "%v", err)
	return nil, false
}

func (p *parser) reload(t *table, kind Kind) Reload {
	r := Reload{Strategy: strategy.Default(kind.String()), Timeout: DefaultReloadTimeout}
	if t == nil {
		return r
	}
	var s string
	if t.str("strategy", &s) {
		st, err := strategy.For(s, kind.String())
		if err != nil {
			t.errf("strategy", "%v", err)
		} else {
			r.Strategy = st
		}
	}
	t.duration("timeout", &r.Timeout)
	keepPrevious(t, &r)
	r.Canary = reloadCanary(t, r.Strategy)
	l := &r.CanaryLimits
	if t.number("canary_error_rise", &l.ErrorRise, 0, 1) && l.ErrorRise == 0 {
		l.ErrorRise = 1e-9 // 0 asks for no rise at all, not the default
	}
	t.number("canary_p99_factor", &l.P99Factor, 1, 100)
	t.number("canary_apdex_drop", &l.ApdexDrop, 0, 1)
	t.integer("canary_min_requests", &l.MinRequests, 1, 1_000_000)
	t.finish()
	return r
}

// keepPrevious reads keep_previous ("0s" or a duration of at least
// MinDuration) into r.KeepPrevious; a window with a strategy other than
// swap is an error: only a swap leaves a whole previous generation with
// its own steered sockets to go back to.
func keepPrevious(t *table, r *Reload) {
	if v, ok := t.get("keep_previous"); ok && (v == "0s" || v == "0") {
		return
	}
	if !t.duration("keep_previous", &r.KeepPrevious) || r.Strategy == strategy.Swap {
		return
	}
	t.errf("keep_previous", "needs strategy %q (strategy %q leaves no previous generation with sockets of its own to steer back to)", strategy.Swap, r.Strategy)
	r.KeepPrevious = 0
}

// reloadCanary reads canary and canary_for of [app.NAME.reload] for an app
// reloaded with st; an error names the key at fault.
func reloadCanary(t *table, st strategy.Strategy) strategy.Canary {
	var shares string
	var every time.Duration
	hasShares := t.str("canary", &shares)
	if t.duration("canary_for", &every) && !hasShares {
		t.errf("canary_for", "needs canary (e.g. canary = \"10%%,50%%\")")
		return strategy.Canary{}
	}
	c, err := strategy.ParseCanary(shares, every)
	if err != nil {
		t.errf("canary", "%v", err)
		return strategy.Canary{}
	}
	if c.On() {
		if err := st.CanCanary(); err != nil {
			t.errf("canary", "%v", err)
			return strategy.Canary{}
		}
	}
	return c
}

// health reads [app.NAME.health]; hasListen says whether the app has a
// listen key at all (a bad one is reported elsewhere).
func (p *parser) health(t *table, a *App, venvOK, hasListen bool) Health {
	h := Health{
		Host:           DefaultHealthHost,
		Interval:       DefaultHealthInterval,
		Timeout:        DefaultHealthTimeout,
		HealthyAfter:   DefaultHealthyAfter,
		UnhealthyAfter: DefaultUnhealthyAfter,
	}
	if t == nil {
		return h
	}
	var set []string
	if t.str("path", &h.Path) {
		if !strings.HasPrefix(h.Path, "/") {
			t.errf("path", "must start with \"/\", got %q", h.Path)
		}
		set = append(set, "path")
	}
	if t.boolean("tcp", &h.TCP) && h.TCP {
		set = append(set, "tcp")
	}
	if t.strList("command", &h.Command) {
		set = append(set, "command")
		if len(h.Command) == 0 || h.Command[0] == "" {
			t.errf("command", "must name an executable")
		} else if venvOK || a.Virtualenv == "" {
			if exe, err := resolveCommand(h.Command[0], a.Virtualenv, a.Directory, runnerOf(a)); err != nil {
				t.errf("command", "%v", err)
			} else {
				h.Command[0] = exe
			}
		}
	}
	if len(set) > 1 {
		t.errf(set[1], "set only one of path, tcp = true and command (%s is set too)", set[0])
	}
	h.Enabled = len(set) > 0
	if (h.Path != "" || h.TCP) && !hasListen {
		name := "path"
		if h.TCP {
			name = "tcp"
		}
		t.errf(name, "HTTP and TCP checks need a listen address")
	}
	if t.str("host", &h.Host) && h.Host == "" {
		t.errf("host", "must not be empty")
	}
	t.duration("interval", &h.Interval)
	t.duration("timeout", &h.Timeout)
	t.integer("healthy_after", &h.HealthyAfter, 1, MaxHealthCount)
	t.integer("unhealthy_after", &h.UnhealthyAfter, 1, MaxHealthCount)
	if t.boolean("restart_when_unhealthy", &h.RestartWhenUnhealthy) && h.RestartWhenUnhealthy && !h.Enabled {
		t.errf("restart_when_unhealthy", "needs a health check (path, tcp or command)")
	}
	t.finish()
	return h
}

// crossChecks validates what spans listeners and apps: listeners that
// cannot all be bound (see claims) and exit_with.
func (p *parser) crossChecks(cfg *Config) {
	c := newClaims()
	owner := make(map[string]string, len(cfg.Apps)) // listener key -> app name
	for _, a := range cfg.Apps {
		for _, l := range a.Listen {
			owner[l.Key] = a.Name
			prev, same, conflict := c.claim(l)
			switch {
			case !conflict:
			case same && owner[prev.Key] == a.Name:
				p.errs.add(l.errorf("%q duplicates %s", l.Raw, prev.Key))
			case same:
				p.errs.add(l.errorf("%q is also a listen address of app %q (%s)", l.Raw, owner[prev.Key], prev.Raw))
			default:
				p.errs.add(l.errorf("%q overlaps %q of app %q: a wildcard address and another one on the same port cannot both be bound", l.Raw, prev.Raw, owner[prev.Key]))
			}
		}
	}
	p.supervisorClaims(c, cfg.Supervisor, owner)
	if ew := cfg.Supervisor.ExitWith; ew != "" && cfg.App(ew) == nil && len(cfg.Apps) > 0 {
		p.errf([]string{"supervisor", "exit_with"}, "no app named %q", ew)
	}
}

// validAppName reports whether name matches [a-zA-Z0-9_.-]+.
func validAppName(name string) bool {
	if name == "" {
		return false
	}
	for _, c := range []byte(name) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.', c == '-':
		default:
			return false
		}
	}
	return true
}

// parseSignal maps a stop_signal name, with or without SIG, to a signal.
func parseSignal(s string) (syscall.Signal, bool) {
	switch strings.TrimPrefix(strings.ToUpper(s), "SIG") {
	case "TERM":
		return syscall.SIGTERM, true
	case "INT":
		return syscall.SIGINT, true
	case "QUIT":
		return syscall.SIGQUIT, true
	case "HUP":
		return syscall.SIGHUP, true
	case "USR1":
		return syscall.SIGUSR1, true
	case "USR2":
		return syscall.SIGUSR2, true
	case "KILL":
		return syscall.SIGKILL, true
	}
	return 0, false
}

// resolveCommand finds argv[0] the way the app will be started, as r: a
// name with a slash is a path (relative to dir), a bare name is looked up
// in <venv>/bin, then in the supervisor's PATH, skipping what r may not
// execute. It returns an absolute path to an executable regular file r may
// execute (search permission on its directories, an execute bit for r).
func resolveCommand(name, venv, dir string, r runner) (string, error) {
	if strings.Contains(name, "/") {
		if !filepath.IsAbs(name) {
			name = filepath.Join(dir, name)
		}
		name = filepath.Clean(name)
		if err := r.canExec(name); err != nil {
			return "", err
		}
		return name, nil
	}
	var denied error
	if venv != "" {
		cand := filepath.Join(venv, "bin", name)
		err := r.canExec(cand)
		if err == nil {
			return cand, nil
		}
		if errors.Is(err, errNoAccess) {
			denied = err
		}
	}
	found, err := r.lookPath(name)
	switch {
	case err == nil:
		return found, nil
	case denied != nil:
		return "", denied
	case errors.Is(err, errNoAccess):
		return "", err
	}
	where := "$PATH"
	if venv != "" {
		where = filepath.Join(venv, "bin") + " or $PATH"
	}
	return "", fmt.Errorf("%q not found in %s", name, where)
}

// CheckExecutable requires path (symlinks followed) to be a regular file
// with an execute bit. The error names path and, for a failed stat, wraps
// its cause (fs.ErrNotExist, fs.ErrPermission).
func CheckExecutable(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %w", path, pathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	if fi.Mode().Perm()&0o111 == 0 {
		return fmt.Errorf("%s: not executable", path)
	}
	return nil
}

// checkExists requires path (symlinks followed) to exist; its error is the
// bare cause (see pathErr).
func checkExists(path string) error {
	_, err := os.Stat(path)
	return err
}

// cached returns check(path), running each check (named kind) once per
// path in a parse: thousands of apps share a virtualenv and directories,
// and the file system is taken not to change while one file is checked.
func (p *parser) cached(kind string, check func(string) error, path string) error {
	k := checkKey{kind, path}
	if err, ok := p.checks[k]; ok {
		return err
	}
	if p.checks == nil {
		p.checks = map[checkKey]error{}
	}
	err := check(path)
	p.checks[k] = err
	return err
}

// checkKey is one check of one path, for parser.cached.
type checkKey struct{ kind, path string }

// checkDir requires path (symlinks followed) to be a directory.
func checkDir(path string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, pathErr(err))
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory", path)
	}
	return nil
}

// checkRegular requires path to be a readable regular file.
func checkRegular(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("%s: %v", path, pathErr(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("%s: %v", path, pathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", path)
	}
	return nil
}

// pathErr strips the operation and path from a *fs.PathError, which the
// callers already name.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// lookupUser resolves a user name or numeric uid that must exist to its uid.
func lookupUser(s string) (int, error) {
	u, err := findUser(s)
	if err != nil {
		return 0, err
	}
	return parseID("user", s, u.Uid)
}

// lookupGroup resolves a group name or numeric gid that must exist to its gid.
func lookupGroup(s string) (int, error) {
	var g *user.Group
	var err error
	if isDigits(s) {
		g, err = user.LookupGroupId(s)
	} else {
		g, err = user.LookupGroup(s)
	}
	var unknownName user.UnknownGroupError
	var unknownID user.UnknownGroupIdError
	switch {
	case err == nil:
		return parseID("group", s, g.Gid)
	case errors.As(err, &unknownName), errors.As(err, &unknownID):
		return 0, fmt.Errorf("no such group %q", s)
	}
	return 0, fmt.Errorf("looking up group %q: %w", s, err)
}

// parseID reads the numeric id the user database gave for name.
func parseID(what, name, id string) (int, error) {
	n, err := strconv.Atoi(id)
	if err != nil {
		return 0, fmt.Errorf("%s %q has a non-numeric id %q: %w", what, name, id, err)
	}
	return n, nil
}
