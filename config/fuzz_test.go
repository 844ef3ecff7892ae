package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzConfigLoad writes the input, with $TMP replaced by a fixture directory
// (a virtualenv with gunicorn, an env file, an app directory: see fixture),
// as the TOML file supervisor.toml in that directory, so that relative paths
// reach the fixture too, and loads it. Load must return either a complete
// Config that satisfies the documented invariants, or a non-empty *Errors
// whose every item names the file and, unless it is the file-level "no app
// defined", a line. Deep nesting is in scope: Load refuses it in linear time
// (seed_nested_3000).
func FuzzConfigLoad(f *testing.F) {
	dir := fixture(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "supervisor.toml")
		text := strings.ReplaceAll(string(data), "$TMP", dir)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := Load(path)
		if err != nil {
			if cfg != nil {
				t.Errorf("Load returned a config together with an error: %v", err)
			}
			checkLoadError(t, path, 1+strings.Count(text, "\n"), err)
			return
		}
		if cfg == nil {
			t.Fatal("Load returned neither a config nor an error")
		}
		checkConfig(t, cfg)
	})
}

// checkLoadError asserts the shape of a Load error: a non-empty *Errors,
// every item about path with a message, every line of the text starting
// with "path:", and a line number within the file's lines on every item
// but "no app defined" (the one problem that is about no particular place).
func checkLoadError(t *testing.T, path string, lines int, err error) {
	t.Helper()
	var list *Errors
	if !errors.As(err, &list) || len(list.List) == 0 {
		t.Fatalf("error is %T %v, want a non-empty *Errors", err, err)
	}
	for _, it := range list.List {
		if it.File != path || it.Msg == "" {
			t.Errorf("item %#v: want File %q and a message", it, path)
		}
		if !strings.HasPrefix(it.Error(), path+":") {
			t.Errorf("item %q does not start with %q", it.Error(), path+":")
		}
		if it.Line <= 0 && !(it.Key == "" && strings.HasPrefix(it.Msg, "no app defined")) {
			t.Errorf("item %q has no line number", it.Error())
		}
		if it.Line > lines {
			t.Errorf("item %q names a line past the last (%d)", it.Error(), lines)
		}
	}
}

// checkConfig asserts what Parse promises of a Config it returns.
func checkConfig(t *testing.T, cfg *Config) {
	t.Helper()
	if !filepath.IsAbs(cfg.Path) {
		t.Errorf("Path %q is not absolute", cfg.Path)
	}
	if len(cfg.Apps) == 0 {
		t.Fatal("a config without apps")
	}
	if ew := cfg.Supervisor.ExitWith; ew != "" && cfg.App(ew) == nil {
		t.Errorf("exit_with %q names no app", ew)
	}
	if cfg.Supervisor.ShutdownTimeout <= 0 {
		t.Errorf("shutdown_timeout %v", cfg.Supervisor.ShutdownTimeout)
	}
	names := make(map[string]bool)
	type socket struct {
		network Network
		address string
	}
	owners := make(map[socket]string)
	for _, a := range cfg.Apps {
		if !validAppName(a.Name) || names[a.Name] {
			t.Errorf("app name %q invalid or repeated", a.Name)
		}
		names[a.Name] = true
		checkApp(t, a)
		for _, l := range a.Listen {
			if l.Network == NetTCP && strings.HasSuffix(l.Address, ":0") {
				continue // a fresh port each time: never the same socket
			}
			k := socket{l.Network, l.Address}
			if other, dup := owners[k]; dup {
				t.Errorf("listener %q of app %q is also one of app %q", l.Raw, a.Name, other)
			}
			owners[k] = a.Name
		}
	}
}

// checkApp asserts the per-app invariants of a returned Config.
func checkApp(t *testing.T, a *App) {
	t.Helper()
	switch a.Kind {
	case KindGunicorn:
		if a.WSGI == "" || len(a.Listen) == 0 {
			t.Errorf("gunicorn app %q: wsgi %q, %d listeners", a.Name, a.WSGI, len(a.Listen))
		}
	case KindProcess:
		if len(a.Command) == 0 {
			t.Errorf("process app %q without a command", a.Name)
		}
	default:
		t.Errorf("app %q: kind %v", a.Name, a.Kind)
	}
	if len(a.Command) > 0 && !filepath.IsAbs(a.Command[0]) {
		t.Errorf("app %q: command[0] %q not resolved to an absolute path", a.Name, a.Command[0])
	}
	for k, v := range a.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			t.Errorf("app %q: env %q=%q", a.Name, k, v)
		}
	}
	b := a.Backoff
	for _, d := range []struct {
		name string
		ok   bool
	}{
		{"stop_timeout", a.StopTimeout > 0},
		{"start_timeout", a.StartTimeout > 0},
		{"start_settle < start_timeout", a.StartSettle > 0 && a.StartSettle < a.StartTimeout},
		{"backoff_initial <= backoff_max", b.Initial > 0 && b.Initial <= b.Max},
		{"stable_after", b.StableAfter > 0},
		{"crash_window", b.CrashWindow > 0},
		{"crash_limit", b.CrashLimit >= 1},
		{"reload.timeout", a.Reload.Timeout > 0},
		{"health.interval", a.Health.Interval > 0},
		{"health.timeout", a.Health.Timeout > 0},
		{"health thresholds", a.Health.HealthyAfter >= 1 && a.Health.UnhealthyAfter >= 1},
		{"workers", a.Workers >= 0},
		{"workers range", a.WorkersMax == 0 || (a.Workers >= 1 && a.WorkersMax > a.Workers && a.WorkersMax <= MaxWorkers)},
		{"max_worker_rss", a.MaxWorkerRSS == 0 || a.MaxWorkerRSS >= MinWorkerRSS},
	} {
		if !d.ok {
			t.Errorf("app %q: %s out of range: %+v", a.Name, d.name, a)
		}
	}
	for _, l := range a.Listen {
		if l.Address == "" || l.Backlog < 1 {
			t.Errorf("app %q: listener %+v", a.Name, l)
		}
	}
}

// FuzzParseEnvFile writes the input as an env file and parses it. The parser
// returns either variables an exec can pass on (names matching
// [A-Za-z_][A-Za-z0-9_]*, so never '=' or NUL; values without NUL), or a
// non-empty *Errors whose items name the file and the line.
func FuzzParseEnvFile(f *testing.F) {
	path := filepath.Join(f.TempDir(), "app.env") // rewritten by each input
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		env, err := ParseEnvFile(path)
		if err != nil {
			if env != nil {
				t.Errorf("env %q together with an error", env)
			}
			var list *Errors
			if !errors.As(err, &list) || len(list.List) == 0 {
				t.Fatalf("error is %T %v, want a non-empty *Errors", err, err)
			}
			for _, it := range list.List {
				if it.File != path || it.Msg == "" || !strings.HasPrefix(it.Error(), path+":") {
					t.Errorf("item %#v: want File %q and a message", it, path)
				}
				if it.Line <= 0 && it.Err == nil {
					t.Errorf("item %q names no line", it.Error())
				}
			}
			return
		}
		if env == nil {
			t.Fatal("neither variables nor an error")
		}
		for k, v := range env {
			if !validEnvName(k) || strings.ContainsAny(k, "=\x00") {
				t.Errorf("invalid name %q", k)
			}
			if strings.ContainsRune(v, 0) {
				t.Errorf("%s: value %q contains a NUL byte", k, v)
			}
		}
	})
}

// TestSyntaxErrorLineAtEOF: a string escape cut off by the end of the file
// is reported on its own line (toml alone says line 0, or the line before).
func TestSyntaxErrorLineAtEOF(t *testing.T) {
	for _, tc := range []struct {
		src  string
		line int
	}{
		{` "\`, 1},
		{"[app.web]\nkind = \"process\"\n\n \"\\", 4},
		{"[supervisor]\nhttp = \n", 2},
	} {
		path := filepath.Join(t.TempDir(), "supervisor.toml")
		if err := os.WriteFile(path, []byte(tc.src), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Load(path)
		var item *Error
		if !errors.As(err, &item) || item.Line != tc.line || !strings.Contains(item.Msg, "syntax error") {
			t.Errorf("Load(%q) = %v, want a syntax error on line %d", tc.src, err, tc.line)
		}
	}
}
