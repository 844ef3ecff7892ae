package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/gunisup/supervisor/internal/defaults"
	"github.com/gunisup/supervisor/reload/strategy"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// fixture builds a directory with everything a configuration may point at:
//
//	venv/bin/{python,gunicorn,celery}   a fake virtualenv with gunicorn
//	bare/bin/python                     a virtualenv without gunicorn
//	noexec/bin/{python,gunicorn}        gunicorn not executable
//	app/                                an app directory
//	current -> app                      a symlinked app directory
//	pathbin/tool                        the only thing on $PATH
//	web.env, bad.env, web-config.yml
//
// It sets PATH to pathbin only, so command lookups do not depend on the host.
func fixture(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	// The commands are resolved as each app's user: let every user search
	// down to dir (t.TempDir's parent is 0700).
	if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		path string
		mode os.FileMode
		data string
	}{
		{"venv/bin/python", 0o755, ""},
		{"venv/bin/gunicorn", 0o755, "#!/bin/sh\n"},
		{"venv/bin/celery", 0o755, "#!/bin/sh\n"},
		{"bare/bin/python", 0o755, ""},
		{"noexec/bin/python", 0o755, ""},
		{"noexec/bin/gunicorn", 0o644, ""},
		{"app/wsgi.py", 0o644, ""},
		{"pathbin/tool", 0o755, "#!/bin/sh\n"},
		{"web.env", 0o644, "# comment\nexport A=1\nB='two words'\n"},
		{"bad.env", 0o644, "GOOD=1\n1BAD=2\nnot an assignment\n"},
		{"web-config.yml", 0o644, "{}\n"},
		{"nul.env", 0o644, "A=1\nB=x\x00y\n"},
	}
	for _, f := range files {
		p := filepath.Join(dir, f.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(f.data), f.mode); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "app"), filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", filepath.Join(dir, "pathbin"))
	return dir
}

// writeConfig writes text, with $TMP replaced by dir, to dir/supervisor.toml.
func writeConfig(t *testing.T, dir, text string) string {
	t.Helper()
	p := filepath.Join(dir, "supervisor.toml")
	if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "$TMP", dir)), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadFull(t *testing.T) {
	dir := fixture(t)
	path := writeConfig(t, dir, `
[supervisor]
control_socket = "$TMP/control.sock"
control_group = "root"
http = "127.0.0.1:0"
http_web_config = "web-config.yml"
shutdown_timeout = "45s"
exit_with = "web"
run_dir = "$TMP/run"

[app.web]
allow_root = true
kind = "gunicorn"
virtualenv = "$TMP/venv"
directory = "$TMP/current"
wsgi = "app:app"
workers = 2
args = ["--timeout", "30", "--statsd-host=localhost:8125"]
listen = [
  "tcp://127.0.0.1:8000",
  "tcp://[::1]:8000",
  "unix://$TMP/app//web.sock",
  "systemd:web",
  "tcp://127.0.0.1:0",
  "tcp://localhost:0",
]
socket_mode = "0600"
socket_owner = "root"
socket_group = "0"
backlog = 128
env = { FLASK_DEBUG = "0", "WITH SPACE" = "x" }
env_file = "web.env"
restart = "on-failure"
stop_signal = "SIGQUIT"
stop_timeout = "10s"
start_timeout = "20s"
backoff_initial = "1s"
backoff_max = "1m"
stable_after = "5s"
crash_window = "2m"
crash_limit = 7

[app.web.reload]
strategy = "usr2"
timeout = "90s"

[app.web.health]
path = "/healthz"
host = "example.org"
interval = "1s"
timeout = "500ms"
healthy_after = 2
unhealthy_after = 4
restart_when_unhealthy = true

# Defined second: must stay second.
[app.worker]
allow_root = true
kind = "process"
virtualenv = "venv"
command = ["celery", "-A", "tasks", "worker"]
stop_signal = "INT"
health.command = ["tool", "ping"]

[app."a.b-c_1"]
allow_root = true
kind = "process"
command = ["./wsgi.py"]
directory = "app"
listen = ["tcp://0.0.0.0:9000"]
reload.strategy = "swap"
`)
	if err := os.Chmod(filepath.Join(dir, "app", "wsgi.py"), 0o755); err != nil {
		t.Fatal(err)
	}
	got, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	at := func(l Listener, line, i int, app string) Listener {
		l.File, l.Line, l.Key = path, line, fmt.Sprintf("app.%s.listen[%d]", app, i)
		return l
	}
	web := func(i int, l Listener) Listener { return at(l, 19, i, "web") }
	want := &Config{
		Path: path,
		Supervisor: Supervisor{
			ControlSocket:   dir + "/control.sock",
			ControlGroup:    "root",
			HTTP:            "127.0.0.1:0",
			HTTPWebConfig:   dir + "/web-config.yml",
			ShutdownTimeout: 45 * time.Second,
			ExitWith:        "web",
			RunDir:          dir + "/run",
		},
		Apps: []*App{
			{
				Name:       "web",
				Kind:       KindGunicorn,
				Line:       11,
				Virtualenv: dir + "/venv",
				Directory:  dir + "/current",
				WSGI:       "app:app",
				Workers:    2,
				Args:       []string{"--timeout", "30", "--statsd-host=localhost:8125"},
				Listen: []Listener{
					web(0, Listener{Raw: "tcp://127.0.0.1:8000", Network: NetTCP, Address: "127.0.0.1:8000", Backlog: 128}),
					web(1, Listener{Raw: "tcp://[::1]:8000", Network: NetTCP, Address: "[::1]:8000", Backlog: 128}),
					web(2, Listener{Raw: "unix://" + dir + "/app//web.sock", Network: NetUnix, Address: dir + "/app/web.sock",
						Mode: 0o600, Owner: "root", Group: "0", Backlog: 128}),
					web(3, Listener{Raw: "systemd:web", Network: NetSystemd, Address: "web", Backlog: 128}),
					web(4, Listener{Raw: "tcp://127.0.0.1:0", Network: NetTCP, Address: "127.0.0.1:0", Backlog: 128}),
					web(5, Listener{Raw: "tcp://localhost:0", Network: NetTCP, Address: "localhost:0", Backlog: 128}),
				},
				Env:      map[string]string{"FLASK_DEBUG": "0", "WITH SPACE": "x"},
				EnvFile:  dir + "/web.env",
				Identity: rootIdentity(),
				Restart:  RestartOnFailure,
				Required: true, Autostart: true,
				StopSignal:   syscall.SIGQUIT,
				StopTimeout:  10 * time.Second,
				StartTimeout: 20 * time.Second,
				StartSettle:  DefaultStartSettle,
				Backoff:      Backoff{Initial: time.Second, Max: time.Minute, StableAfter: 5 * time.Second, CrashWindow: 2 * time.Minute, CrashLimit: 7},
				Reload:       Reload{Strategy: strategy.USR2, Timeout: 90 * time.Second},
				Health: Health{Enabled: true, Path: "/healthz", Host: "example.org", Interval: time.Second,
					Timeout: 500 * time.Millisecond, HealthyAfter: 2, UnhealthyAfter: 4, RestartWhenUnhealthy: true},
				Statsd: false,
			},
			{
				Name:       "worker",
				Kind:       KindProcess,
				Line:       57,
				Virtualenv: dir + "/venv",
				Directory:  dir,
				Command:    []string{dir + "/venv/bin/celery", "-A", "tasks", "worker"},
				Identity:   rootIdentity(),
				Restart:    RestartAlways,
				Required:   true, Autostart: true,
				StopSignal:   syscall.SIGINT,
				StopTimeout:  DefaultStopTimeout,
				StartTimeout: DefaultStartTimeout,
				StartSettle:  DefaultStartSettle,
				Backoff:      defaultBackoff(),
				Reload:       Reload{Strategy: strategy.Restart, Timeout: DefaultReloadTimeout},
				Health: Health{Enabled: true, Command: []string{dir + "/pathbin/tool", "ping"}, Host: "localhost",
					Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyAfter: 3, UnhealthyAfter: 3},
			},
			{
				Name:      "a.b-c_1",
				Kind:      KindProcess,
				Line:      65,
				Directory: dir + "/app",
				Command:   []string{dir + "/app/wsgi.py"},
				Identity:  rootIdentity(),
				Listen:    []Listener{at(Listener{Raw: "tcp://0.0.0.0:9000", Network: NetTCP, Address: "0.0.0.0:9000", Backlog: DefaultBacklog}, 70, 0, `"a.b-c_1"`)},
				Restart:   RestartAlways,
				Required:  true, Autostart: true,
				StopSignal:   syscall.SIGTERM,
				StopTimeout:  DefaultStopTimeout,
				StartTimeout: DefaultStartTimeout,
				StartSettle:  DefaultStartSettle,
				Backoff:      defaultBackoff(),
				Reload:       Reload{Strategy: strategy.Overlap, Timeout: DefaultReloadTimeout},
				Health:       defaultHealth(),
			},
		},
	}
	withDefaultLogs(want)
	withDefaultRoutes(want)
	for i := range max(len(got.Apps), len(want.Apps)) {
		if i >= len(got.Apps) || i >= len(want.Apps) {
			t.Fatalf("got %d apps, want %d", len(got.Apps), len(want.Apps))
		}
		if !reflect.DeepEqual(got.Apps[i], want.Apps[i]) {
			t.Errorf("app %d:\n got %+v\nwant %+v", i, *got.Apps[i], *want.Apps[i])
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config:\n got %+v\nwant %+v", *got, *want)
	}
	if a := got.App("worker"); a == nil || a.Name != "worker" {
		t.Errorf("App(worker) = %v", a)
	}
	if bin := got.Apps[0].GunicornBin(); bin != dir+"/venv/bin/gunicorn" {
		t.Errorf("GunicornBin = %q", bin)
	}
}

// rootIdentity is the Identity of an app without user or group, with
// allow_root = true, loaded by this test process.
func rootIdentity() Identity {
	return Identity{UID: os.Geteuid(), GID: os.Getegid(), AllowRoot: true}
}

func defaultBackoff() Backoff {
	return Backoff{Initial: DefaultBackoffInitial, Max: DefaultBackoffMax, StableAfter: DefaultStableAfter,
		CrashWindow: DefaultCrashWindow, CrashLimit: DefaultCrashLimit}
}

func defaultHealth() Health {
	return Health{Host: DefaultHealthHost, Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		HealthyAfter: DefaultHealthyAfter, UnhealthyAfter: DefaultUnhealthyAfter}
}

func TestParseDefaults(t *testing.T) {
	dir := fixture(t)
	path := filepath.Join(dir, "supervisor.toml")
	got, err := Parse(path, []byte(`
[app.web]
allow_root = true
virtualenv = "venv"
wsgi = "app:app"
listen = ["unix:///run/web.sock"]
`))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Config{
		Path: path,
		Supervisor: Supervisor{
			ControlSocket:   defaults.ControlSocket,
			HTTP:            DefaultHTTP,
			ShutdownTimeout: DefaultShutdownTimeout,
			RunDir:          DefaultRunDir,
		},
		Apps: []*App{{
			Name:       "web",
			Kind:       KindGunicorn,
			Line:       2,
			Virtualenv: dir + "/venv",
			Directory:  dir,
			WSGI:       "app:app",
			Listen: []Listener{{Raw: "unix:///run/web.sock", Network: NetUnix, Address: "/run/web.sock", Mode: 0o660, Backlog: 2048,
				File: path, Line: 6, Key: "app.web.listen[0]"}},
			Identity: rootIdentity(),
			Restart:  RestartAlways,
			Required: true, Autostart: true,
			StopSignal:   syscall.SIGTERM,
			StopTimeout:  30 * time.Second,
			StartTimeout: 60 * time.Second,
			StartSettle:  DefaultStartSettle,
			Backoff:      Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, StableAfter: 10 * time.Second, CrashWindow: time.Minute, CrashLimit: 5},
			Reload:       Reload{Strategy: strategy.Swap, Timeout: time.Minute},
			Health:       Health{Host: "localhost", Interval: 5 * time.Second, Timeout: 2 * time.Second, HealthyAfter: 3, UnhealthyAfter: 3},
			Statsd:       true,
		}},
	}
	withDefaultLogs(want)
	withDefaultRoutes(want)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config:\n got %+v\nwant %+v\n got app %+v\nwant app %+v", *got, *want, *got.Apps[0], *want.Apps[0])
	}
}

func TestAppOrder(t *testing.T) {
	dir := fixture(t)
	// Sub-tables and dotted keys of earlier apps come later in the file; an
	// app's position is that of its first mention.
	path := writeConfig(t, dir, `
[app.zeta]
allow_root = true
kind = "process"
command = ["tool"]
[app.alpha]
allow_root = true
kind = "process"
command = ["tool"]
[app.zeta.reload]
timeout = "1s"
[app.mid]
allow_root = true
kind = "process"
command = ["tool"]
[app.beta.health]
tcp = true
[app.beta]
allow_root = true
kind = "process"
command = ["tool"]
listen = ["tcp://127.0.0.1:0"]
`)
	cfg, err := Load(path)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	var names []string
	var lines []int
	for _, a := range cfg.Apps {
		names = append(names, a.Name)
		lines = append(lines, a.Line)
	}
	if want := []string{"zeta", "alpha", "mid", "beta"}; !reflect.DeepEqual(names, want) {
		t.Errorf("order = %v, want %v", names, want)
	}
	if want := []int{2, 6, 12, 16}; !reflect.DeepEqual(lines, want) {
		t.Errorf("lines = %v, want %v", lines, want)
	}
}

func TestParseErrors(t *testing.T) {
	const web = `
[app.web]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000"]
`
	tests := []struct {
		name, text string
	}{
		{"syntax", "[supervisor]\nhttp = \n"},
		{"syntax_duplicate_key", web + "wsgi = \"other:app\"\n"},
		{"no_app", "[supervisor]\nhttp = \"\"\n"},
		{"app_not_table", "app = 5\n"},
		{"empty_app_table", "[app]\n"},
		{"unknown_top_level", "colour = \"blue\"\n" + web + "[metrics]\nport = 1\n"},
		{"unknown_supervisor", "[supervisor]\nshutdown_timout = \"1s\"\n" + web},
		{"unknown_app_key", web + "stop_timout = \"1s\"\nXYZZY = 1\nKind = \"process\"\n"},
		{"unknown_reload_health", web + "[app.web.reload]\nstrategy = \"swap\"\ntimeot = \"1s\"\n[app.web.health]\npath = \"/\"\nintervall = \"1s\"\n[app.web.helth]\n"},
		{"wrong_types", `
[supervisor]
http = 9321
shutdown_timeout = 30
[app.web]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = "tcp://127.0.0.1:8000"
workers = "2"
args = ["--timeout", 30]
env = { A = 1, B = "ok" }
restart_when_unhealthy = true
socket_mode = 0o660
reload = "swap"
[app.web.health]
tcp = "yes"
restart_when_unhealthy = "no"
`},
		{"bad_durations", `
[supervisor]
shutdown_timeout = "30x"
[app.web]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000"]
stop_timeout = "30x"
start_timeout = "0s"
backoff_initial = "-1s"
backoff_max = ""
stable_after = "10"
[app.web.health]
interval = "1 s"
`},
		{"bad_route_keys", web + `route_metrics = "yes"
routes = ["api/items/:id", "/a b"]
route_cap = 0
apdex_t = "1x"
compare_window = "1ms"
[app.worker]
kind = "process"
command = ["/bin/true"]
allow_root = true
routes = ["/x"]
`},
		{"tiny_durations", web + `backoff_initial = "1ns"
backoff_max = "1ns"
stop_timeout = "9ms"
crash_window = "10ms"
[app.web.reload]
timeout = "1ns"
[app.web.health]
interval = "1ns"
timeout = "1us"
`},
		{"canary_keys", web + `[app.web.reload]
strategy = "usr2"
canary = "10%"
`},
		{"canary_values", web + `[app.web.reload]
canary = "10%,abc"
canary_for = "1h"
canary_p99_factor = 0.5
canary_apdex_drop = "x"
canary_error_rise = 0.02
canary_min_requests = 0
`},
		{"count_ceilings", web + "workers = 1025\nbacklog = 65536\ncrash_limit = 1001\n[app.web.health]\nhealthy_after = 101\nunhealthy_after = 100\n"},
		{"listen_places", `
[app.web]
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = ["unix://$TMP/nodir/web.sock", "unix://$TMP/web.env", "unix://$TMP/app", "tcp://127.0.0.1:8000", "tcp://localhost:8000", "tcp://0.0.0.0:9000", "tcp://[::]:9000"]
[app.api]
virtualenv = "$TMP/venv"
wsgi = "api:app"
listen = ["tcp://localhost:8001", "tcp://127.0.0.1:9000", "tcp://[::ffff:127.0.0.1]:8000", "tcp://[::1]:9001", "tcp://127.0.0.1:9001", "tcp://0.0.0.0:9001"]
[app.other]
virtualenv = "$TMP/venv"
wsgi = "other:app"
listen = ["tcp://127.0.0.1:8001", "tcp://[::]:9001", "unix://$TMP/app/web.sock"]
[app.linked]
kind = "process"
command = ["tool"]
listen = ["unix://$TMP/current/web.sock"]
`},
		{"envfile_nul", web + "env_file = \"nul.env\"\n"},
		{"backoff_order", web + "backoff_initial = \"1m\"\n"},
		{"bad_numbers", web + "workers = -1\nbacklog = 0\ncrash_limit = 0\n[app.web.health]\nhealthy_after = 0\nunhealthy_after = 99999999999\n"},
		{"worker_ranges", "[app.a]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:8101\"]\nworkers = \"8..2\"\nmax_worker_rss = \"1MiB\"\n" +
			"[app.b]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:8102\"]\nworkers = \"0..4\"\nmax_worker_rss = \"300MB\"\n" +
			"[app.c]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:8103\"]\nworkers = \"2-8\"\nmax_worker_rss = 300\n" +
			"[app.d]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:8104\"]\nworkers = \"2..2000\"\n" +
			"[app.e]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:8105\"]\nworkers = 2.5\n" +
			"[app.f]\nallow_root = true\nkind = \"process\"\ncommand = [\"tool\"]\nmax_worker_rss = \"300MiB\"\n"},
		{"missing_virtualenv", `
[app.web]
allow_root = true
virtualenv = "$TMP/nope"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000"]
[app.file]
allow_root = true
virtualenv = "$TMP/web.env"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8001"]
[app.nopython]
allow_root = true
virtualenv = "$TMP/app"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8002"]
[app.none]
allow_root = true
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8003"]
`},
		{"venv_without_gunicorn", `
[app.web]
allow_root = true
virtualenv = "$TMP/bare"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000"]
[app.noexec]
allow_root = true
virtualenv = "$TMP/noexec"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8001"]
[app.override]
allow_root = true
virtualenv = "$TMP/bare"
command = ["gunicorn-custom"]
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8002"]
`},
		{"duplicate_listen", `
[app.web]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000", "tcp://127.000.0.1:8000", "unix://$TMP/a/../web.sock", "unix://$TMP/web.sock", "tcp://127.0.0.1:0", "tcp://127.0.0.1:0"]
[app.api]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = "api:app"
listen = ["tcp://127.0.0.1:08000", "systemd:api", "systemd:api", "tcp://[::1]:8000"]
[app.other]
allow_root = true
kind = "process"
command = ["tool"]
listen = ["tcp://[0:0::1]:8000", "systemd:api", "unix://$TMP//web.sock"]
`},
		{"bad_listen", `
[app.web]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = [
  "127.0.0.1:8000",
  "tcp://127.0.0.1",
  "tcp://example.org:80",
  "tcp://127.0.0.1:http",
  "tcp://127.0.0.1:65536",
  "tcp://::1:8000",
  "unix://run/web.sock",
  "unix:///` + strings.Repeat("x", 110) + `",
  "systemd:",
  "systemd:a:b",
  "",
]
`},
		{"empty_listen", web + "[app.p]\nallow_root = true\nkind = \"process\"\ncommand = [\"tool\"]\n[app.p.health]\npath = \"/\"\n[app.g]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"x:y\"\nlisten = []\n[app.g2]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"x:y\"\n"},
		{"unknown_kind", web + "kind = \"celery\"\ncommand = [\"tool\"]\n"},
		{"missing_wsgi", `
[app.web]
allow_root = true
virtualenv = "$TMP/venv"
listen = ["tcp://127.0.0.1:8000"]
[app.empty]
allow_root = true
virtualenv = "$TMP/venv"
wsgi = ""
listen = ["tcp://127.0.0.1:8001"]
`},
		{"process_kind", `
[app.worker]
allow_root = true
kind = "process"
wsgi = "app:app"
workers = 2
args = ["-w", "2"]
[app.worker.reload]
strategy = "usr2"
[app.cmd]
allow_root = true
kind = "process"
command = []
[app.notfound]
allow_root = true
kind = "process"
virtualenv = "$TMP/venv"
command = ["nosuchtool"]
[app.notexec]
allow_root = true
kind = "process"
command = ["$TMP/web.env"]
[app.dir]
allow_root = true
kind = "process"
command = ["$TMP/app"]
[app.web]
virtualenv = "$TMP/venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000"]
allow_root = true
[app.web.reload]
strategy = "overlap"
`},
		{"bad_steering", web + "steering = \"ebpf\"\n"},
		{"exit_with", "[supervisor]\nexit_with = \"wbe\"\n" + web},
		{"supervisor_values", `
[supervisor]
control_socket = ""
control_group = "no-such-group-xyz"
http = "localhost"
http_web_config = "missing.yml"
run_dir = ""
` + web},
		{"app_values", web + `directory = "$TMP/nodir"
restart = "sometimes"
stop_signal = "STOP"
socket_mode = "0999"
socket_owner = "no-such-user-xyz"
socket_group = "999999"
env = { "A=B" = "1" }
env_file = "$TMP/missing.env"
[app.web.reload]
strategy = "rolling"
[app.web.health]
path = "healthz"
tcp = true
host = ""
[app."bad name"]
allow_root = true
kind = "process"
command = ["tool"]
env_file = "bad.env"
[app.noreload]
allow_root = true
kind = "process"
command = ["tool"]
[app.noreload.health]
restart_when_unhealthy = true
[app.noreload.reload]
keep_previous = "2m"
[app.keep]
allow_root = true
kind = "process"
command = ["tool"]
[app.keep.reload]
keep_previous = "soon"
`},
		{"gunicorn_args", web + `args = ["--bind", "0.0.0.0:80", "-b0.0.0.0:80", "--bind=x", "--bi", "--daemon", "-D", "--reuse-port", "--pid", "/run/x.pid", "-p", "--pid=/x", "--workers", "3", "--", "--bind"]` + "\n"},
		{"default_directory_missing", web},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fixture(t)
			path := writeConfig(t, dir, tt.text)
			if tt.name == "default_directory_missing" {
				// Parse never reads path: point it into a directory that is not there.
				data, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				path = filepath.Join(dir, "gone", "supervisor.toml")
				cfg, err := Parse(path, data)
				checkGolden(t, dir, tt.name, cfg, err)
				return
			}
			cfg, err := Load(path)
			checkGolden(t, dir, tt.name, cfg, err)
		})
	}
}

// checkGolden compares err's text, with dir replaced by $TMP, with
// testdata/NAME.golden, and checks the shape of the error value.
func checkGolden(t *testing.T, dir, name string, cfg *Config, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; config %+v", cfg)
	}
	if cfg != nil {
		t.Errorf("got a config together with an error")
	}
	var list *Errors
	if !errors.As(err, &list) || len(list.List) == 0 {
		t.Fatalf("error is %T %v, want a non-empty *Errors", err, err)
	}
	var item *Error
	if !errors.As(err, &item) || item != list.List[0] {
		t.Errorf("errors.As(*Error) = %v, want the first item", item)
	}
	for _, it := range list.List {
		if it.File == "" || it.Msg == "" {
			t.Errorf("item lacks file or message: %#v", it)
		}
	}
	got := strings.ReplaceAll(err.Error(), dir, "$TMP") + "\n"
	golden := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("error mismatch (-update to accept)\n--- got\n%s--- want\n%s", got, want)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "absent.toml")
	_, err := Load(path)
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v, want fs.ErrNotExist", err)
	}
	if want := path + ": cannot read: no such file or directory"; err.Error() != want {
		t.Errorf("err = %q, want %q", err, want)
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{File: "f.toml", Line: 3, Key: "app.web.x", Msg: "bad"}, "f.toml:3: app.web.x: bad"},
		{Error{File: "f.toml", Key: "app", Msg: "bad"}, "f.toml: app: bad"},
		{Error{File: "f.toml", Line: 7, Msg: "bad"}, "f.toml:7: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("Error() = %q, want %q", got, tt.want)
		}
	}
}

func TestParseListen(t *testing.T) {
	tests := []struct {
		raw     string
		network Network
		address string
		bind    string // TCPAddr, for TCP
		bad     bool
	}{
		{raw: "tcp://127.0.0.1:8000", network: NetTCP, address: "127.0.0.1:8000", bind: "127.0.0.1:8000"},
		{raw: "tcp://[::1]:80", network: NetTCP, address: "[::1]:80", bind: "[::1]:80"},
		{raw: "tcp://[0:0::1]:0080", network: NetTCP, address: "[::1]:80", bind: "[::1]:80"},
		{raw: "tcp://localhost:8000", network: NetTCP, address: "localhost:8000", bind: "127.0.0.1:8000"},
		{raw: "tcp://0.0.0.0:0", network: NetTCP, address: "0.0.0.0:0", bind: "0.0.0.0:0"},
		{raw: "tcp://[fe80::1%lo]:80", network: NetTCP, address: "[fe80::1%lo]:80", bind: "[fe80::1%lo]:80"},
		{raw: "unix:///run/x/../web.sock", network: NetUnix, address: "/run/web.sock"},
		{raw: "systemd:web", network: NetSystemd, address: "web"},
		{raw: "systemd:007", network: NetSystemd, address: "7"},
		{raw: "tcp://127.0.0.1", bad: true},
		{raw: "tcp://host.example:80", bad: true},
		{raw: "tcp://127.0.0.1:-1", bad: true},
		{raw: "tcp://127.0.0.1:99999", bad: true},
		{raw: "unix://relative", bad: true},
		{raw: "unix:///" + strings.Repeat("a", 107), bad: true},
		{raw: "unix:///" + strings.Repeat("a", 100), network: NetUnix, address: "/" + strings.Repeat("a", 100)},
		{raw: "unix:///" + strings.Repeat("a", 101), bad: true}, // its hidden name /.a….held is 108 bytes
		{raw: "tcp://[::ffff:127.0.0.1]:80", network: NetTCP, address: "[::ffff:127.0.0.1]:80", bind: "127.0.0.1:80"},
		{raw: "systemd:", bad: true},
		{raw: "systemd:a b", bad: true},
		{raw: "systemd:99999999999999999999", bad: true},
		{raw: "udp://127.0.0.1:53", bad: true},
		{raw: "127.0.0.1:8000", bad: true},
	}
	for _, tt := range tests {
		t.Run(tt.raw, func(t *testing.T) {
			l, err := parseListen(tt.raw)
			if tt.bad {
				if err == nil {
					t.Fatalf("parseListen(%q) = %+v, want error", tt.raw, l)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseListen(%q): %v", tt.raw, err)
			}
			if l.Raw != tt.raw || l.Network != tt.network || l.Address != tt.address {
				t.Errorf("got %+v, want %v %q", l, tt.network, tt.address)
			}
			if l.Network == NetTCP {
				ap, err := l.TCPAddr()
				if err != nil || ap.String() != tt.bind {
					t.Errorf("TCPAddr() = %v, %v; want %s", ap, err, tt.bind)
				}
			}
		})
	}
}

func TestStatsd(t *testing.T) {
	tests := []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--timeout", "30"}, true},
		{[]string{"--statsd-host", "localhost:8125"}, false},
		{[]string{"--statsd-host=localhost:8125"}, false},
		{[]string{"--statsd-prefix", "web"}, true},
		{[]string{"--", "--statsd-host"}, true},
	}
	for _, tt := range tests {
		p := &parser{file: "f", errs: &Errors{}}
		a := &App{Args: tt.args, Statsd: true}
		p.gunicornArgs([]string{"app", "web", "args"}, a)
		if a.Statsd != tt.want || len(p.errs.List) != 0 {
			t.Errorf("args %q: Statsd = %v, errors %v; want %v and none", tt.args, a.Statsd, p.errs.List, tt.want)
		}
	}
}

// TestKeyLines checks the line scanner against the toml parser: every key
// the parser reports has a line, and chosen keys have the right one.
func TestKeyLines(t *testing.T) {
	src := `# comment [not.a.table]
top = "x # not a comment"   # comment
"quoted key" = 'lit'
multi = """
[fake.table]
key = 1
"""
lit = '''
a = 'b' '''
arr = [
  1, # comment ]
  [2, 3],
  { inner = "}" },
]
[a.b]
c.d = 1
"e.f" = { g = 1, h = { i = [
  "j",
] } }
[[list]]
x = 1
[[list]]
y = 2
[a.b.k]
z = 2023-01-01 10:00:00
dquote = """a""""
after = true
`
	var doc map[string]any
	md, err := toml.Decode(src, &doc)
	if err != nil {
		t.Fatal(err)
	}
	lines, err := keyLineMap(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range md.Keys() {
		if _, ok := lines[k.String()]; !ok {
			t.Errorf("key %s has no line", k)
		}
	}
	want := map[string]int{
		"top":           2,
		`"quoted key"`:  3,
		"multi":         4,
		"lit":           8,
		"arr":           10,
		"a":             15,
		"a.b":           15,
		"a.b.c":         16,
		"a.b.c.d":       16,
		`a.b."e.f"`:     17,
		`a.b."e.f".h.i`: 17,
		"list":          20,
		"list.x":        21,
		"list.y":        23,
		"a.b.k":         24,
		"a.b.k.z":       25,
		"a.b.k.dquote":  26,
		"a.b.k.after":   27,
	}
	for k, l := range want {
		if lines[k] != l {
			t.Errorf("line of %s = %d, want %d", k, lines[k], l)
		}
	}
	if _, ok := lines["fake.table"]; ok {
		t.Errorf("a table inside a multi-line string was recorded")
	}
}

// FuzzKeyLines checks that the line scanner never panics and, for every
// document toml accepts, finds a line for every key toml reports.
func FuzzKeyLines(f *testing.F) {
	for _, s := range []string{
		"a = 1\n[b]\nc = [1, {d = 2}]\n",
		"x = \"\"\"\n\"\"\"\"\ny = '''a'''\n",
		"[a.\"b.c\"]\n'd' = { e.f = 1 }\n",
		"[[t]]\n[[t]]\nk = 2023-01-01T00:00:00Z\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, src string) {
		lines, err := keyLineMap(src)
		if err != nil {
			if !errors.Is(err, errTooDeep) {
				t.Errorf("keyLines(%q): %v", src, err)
			}
			return
		}
		var doc map[string]any
		md, err := toml.Decode(src, &doc)
		if err != nil {
			return
		}
		for _, k := range md.Keys() {
			if _, ok := lines[k.String()]; !ok {
				t.Errorf("key %s has no line in %q", k, src)
			}
		}
	})
}
