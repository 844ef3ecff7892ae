package launch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/config"
)

func TestEnv(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "app.env")
	if err := os.WriteFile(envFile, []byte("FROM_FILE=1\nSHARED=file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	parent := []string{
		"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "LANGUAGE=en", "LC_ALL=C", "LC_TIME=de_DE", "TZ=UTC", "TMPDIR=/var/tmp",
		"HOME=/root", "USER=root", "LOGNAME=root",
		"NOTIFY_SOCKET=/run/systemd/notify", "LISTEN_FDS=2", "LISTEN_PID=1", "LISTEN_FDNAMES=a:b",
		"WATCHDOG_USEC=1000", "WATCHDOG_PID=1", "SUPCTL_SOCKET=/run/x.sock", "SUPERVISOR_UPGRADE_STATE=/x",
		"AWS_SECRET_ACCESS_KEY=hunter2", "SENTRY_DSN=https://x", "GUNICORN_FD=3", "PYTHONHOME=/x", "LCX=no",
	}
	uid := os.Geteuid()
	app := &config.App{
		Name:       "web",
		Virtualenv: "/srv/venv",
		EnvFile:    envFile,
		Env:        map[string]string{"SHARED": "env", "LOG": "/var/log/{app}/app.log", "STATIC": "{release}/static"},
		Identity:   config.Identity{UID: uid},
	}
	want := []string{
		"FROM_FILE=1", "HOME=/root", "LANG=C.UTF-8", "LANGUAGE=en", "LC_ALL=C", "LC_TIME=de_DE",
		"LOG=/var/log/web/app.log", "LOGNAME=root", "PATH=/srv/venv/bin:/usr/bin:/bin",
		"PWD=/srv/web/current", "SENTRY_DSN=https://x", "SHARED=env", "STATIC=/srv/web/releases/3/static", "TMPDIR=/var/tmp", "TZ=UTC",
		"USER=root", "VIRTUAL_ENV=/srv/venv",
	}
	got, err := Env(app, "/srv/web/releases/3", "/srv/web/current", parent, []string{"SENTRY_DSN", "NOTIFY_SOCKET"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("env of an app running as the supervisor's user:\n got %q\nwant %q", got, want)
	}

	app.Identity = config.Identity{User: "nobody", Name: "nobody", Home: "/nonexistent", UID: uid}
	got, err = Env(app, "/srv/web/releases/3", "/srv/web/current", parent, []string{"SENTRY_DSN", "NOTIFY_SOCKET"})
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range []string{"HOME=/nonexistent", "USER=nobody", "LOGNAME=nobody"} {
		if !slices.Contains(got, kv) {
			t.Errorf("env of an app with a user lacks %s: %q", kv, got)
		}
	}
	if slices.Contains(got, "HOME=/root") {
		t.Errorf("the supervisor's HOME reached an app with a user of its own")
	}
}

func TestEnvRefusesWritableEnvFile(t *testing.T) {
	envFile := filepath.Join(t.TempDir(), "app.env")
	if err := os.WriteFile(envFile, []byte("A=1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(envFile, 0o666); err != nil {
		t.Fatal(err)
	}
	app := &config.App{Name: "web", EnvFile: envFile, Identity: config.Identity{UID: os.Geteuid()}}
	_, err := Env(app, "/", "/", nil, nil)
	if err == nil || !strings.Contains(err.Error(), envFile) || !strings.Contains(err.Error(), "writable") {
		t.Fatalf("err = %v, want a refusal naming %s", err, envFile)
	}
}
