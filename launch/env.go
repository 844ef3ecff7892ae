// Package launch turns a configured app into what starts one of its
// processes: the environment, credentials, attributes (umask, nice,
// oom_score_adj, rlimits) and argv of a proc.Spec. It is pure: it reads the
// app's env file but starts, binds and creates nothing; the caller brings
// the listening descriptors, the pidfile path and the Gunicorn version.
package launch

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"github.com/gunisup/supervisor/config"
)

// Env returns the environment of app's processes started in the resolved
// release directory dir with PWD pwd: sorted, the part of parent
// config.InheritedVar lets through (an allow-list, LC_*, the names in pass,
// and the account variables: the app user's own when it has one). Nothing
// else of the supervisor's environment reaches an app: not systemd's
// NOTIFY_SOCKET, LISTEN_* or WATCHDOG_*, not SUPCTL_SOCKET, not a secret.
// Then come
// VIRTUAL_ENV with the virtualenv's bin/ first on PATH, the env_file (read
// with config.ReadEnvFile, so a file others could write is refused), the
// app's env with {app} and {release} (dir) expanded, and PWD. A later
// source overrides an earlier one.
func Env(app *config.App, dir, pwd string, parent, pass []string) ([]string, error) {
	env := map[string]string{}
	for _, kv := range parent {
		k, v, _ := strings.Cut(kv, "=")
		if config.InheritedVar(k, app.Identity.User == "", pass) {
			env[k] = v
		}
	}
	if id := app.Identity; id.User != "" {
		env["HOME"], env["USER"], env["LOGNAME"] = id.Home, id.Name, id.Name
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
		fromFile, err := config.ReadEnvFile(app.EnvFile, app.Identity.UID)
		if err != nil {
			return nil, fmt.Errorf("app %s: %w", app.Name, err)
		}
		for k, v := range fromFile {
			env[k] = v
		}
	}
	for k, v := range app.Env {
		env[k] = config.ExpandEnv(v, app.Name, dir)
	}
	env["PWD"] = pwd
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out, nil
}

// Lookup returns the value of key in env ("" when it is not set).
func Lookup(env []string, key string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == key {
			return v
		}
	}
	return ""
}
