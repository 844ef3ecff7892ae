package config

import (
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"
)

// needRoot skips a test whose configuration is judged by running as root.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: decides what runs as root and chowns files")
	}
}

func TestIdentityErrors(t *testing.T) {
	needRoot(t)
	const proc = "kind = \"process\"\ncommand = [\"tool\"]\n"
	tests := []struct {
		name, text string
		setup      func(t *testing.T, dir string)
	}{
		{"run_as_root", "[app.web]\n" + proc + "[app.admin]\nuser = \"root\"\n" + proc +
			"[app.zero]\nuser = \"0\"\nallow_root = false\n" + proc +
			"[app.ok]\nuser = \"nobody\"\n" + proc + "[app.allowed]\nallow_root = true\n" + proc +
			"[app.groupOnly]\ngroup = \"www-data\"\n" + proc, nil},
		{"user_values", `[app.web]
user = "no-such-user-xyz"
group = "no-such-group-xyz"
allow_root = "yes"
umask = "0999"
nice = 20
oom_score_adjust = -1001
env = { A = "{instance}-{app}", B = "{release}" }
kind = "process"
command = ["tool"]
[app.web.rlimits]
nofile = -1
core = "lots"
as = 1.5
nofiles = 10
[app.empty]
user = ""
umask = 18
nice = "low"
rlimits = 5
kind = "process"
command = ["tool"]
`, nil},
		{"env_file_perms", `[app.open]
user = "nobody"
env_file = "open.env"
kind = "process"
command = ["tool"]
[app.foreign]
allow_root = true
env_file = "nobody.env"
kind = "process"
command = ["tool"]
[app.own]
user = "nobody"
env_file = "nobody.env"
kind = "process"
command = ["tool"]
[app.groupw]
user = "www-data"
env_file = "group.env"
kind = "process"
command = ["tool"]
`, func(t *testing.T, dir string) {
			writeEnv(t, filepath.Join(dir, "open.env"), 0o666, -1)
			writeEnv(t, filepath.Join(dir, "nobody.env"), 0o600, lookupUID(t, "nobody"))
			writeEnv(t, filepath.Join(dir, "group.env"), 0o620, -1)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fixture(t)
			if tt.setup != nil {
				tt.setup(t, dir)
			}
			cfg, err := Load(writeConfig(t, dir, tt.text))
			checkGolden(t, dir, tt.name, cfg, err)
		})
	}
}

// writeEnv writes a one-line env file with mode perm (umask aside), owned
// by uid unless uid is -1.
func writeEnv(t *testing.T, path string, perm os.FileMode, uid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte("A=1\n"), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	if uid >= 0 {
		if err := os.Chown(path, uid, -1); err != nil {
			t.Fatal(err)
		}
	}
}

func lookupUID(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("user %s: %v", name, err)
	}
	n, err := strconv.Atoi(u.Uid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestIdentityAndLimits(t *testing.T) {
	needRoot(t)
	dir := fixture(t)
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Skip(err)
	}
	www, err := user.LookupGroup("www-data")
	if err != nil {
		t.Skip(err)
	}
	path := writeConfig(t, dir, `[app.web]
user = "nobody"
group = "www-data"
umask = "0027"
nice = 5
oom_score_adjust = 500
env_file = "nobody.env"
kind = "process"
command = ["tool"]
rlimits = { nofile = 1024, core = 0, as = "unlimited", nproc = 64 }
[app.plain]
user = "nobody"
kind = "process"
command = ["tool"]
`)
	writeEnv(t, filepath.Join(dir, "nobody.env"), 0o600, lookupUID(t, "nobody"))
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	atoi := func(s string) int {
		n, err := strconv.Atoi(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	var groups []int
	gids, err := nobody.GroupIds()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range gids {
		groups = append(groups, atoi(g))
	}
	plain := Identity{User: "nobody", UID: atoi(nobody.Uid), GID: atoi(nobody.Gid), Groups: groups, Name: "nobody", Home: nobody.HomeDir}
	if got := cfg.App("plain").Identity; !reflect.DeepEqual(got, plain) {
		t.Errorf("plain identity = %+v, want %+v", got, plain)
	}
	web := plain
	web.Group, web.GID = "www-data", atoi(www.Gid)
	web.Groups = append(append([]int(nil), groups...), atoi(www.Gid))
	if got := cfg.App("web").Identity; !reflect.DeepEqual(got, web) {
		t.Errorf("web identity = %+v, want %+v", got, web)
	}
	mask, nice, oom := 0o027, 5, 500
	want := Limits{Umask: &mask, Nice: &nice, OOMScoreAdj: &oom, Rlimits: []Rlimit{
		{Name: "as", Resource: RlimitNames["as"], Value: RlimInfinity},
		{Name: "core", Resource: RlimitNames["core"], Value: 0},
		{Name: "nofile", Resource: RlimitNames["nofile"], Value: 1024},
		{Name: "nproc", Resource: RlimitNames["nproc"], Value: 64},
	}}
	if got := cfg.App("web").Limits; !reflect.DeepEqual(got, want) {
		t.Errorf("limits = %+v, want %+v", got, want)
	}
	if got := cfg.App("plain").Limits; !reflect.DeepEqual(got, Limits{}) {
		t.Errorf("plain limits = %+v, want none", got)
	}
}

func TestReadEnvFileOwner(t *testing.T) {
	needRoot(t)
	p := filepath.Join(t.TempDir(), "app.env")
	nobody := lookupUID(t, "nobody")
	writeEnv(t, p, 0o640, nobody)
	if _, err := ReadEnvFile(p, nobody); err != nil {
		t.Errorf("owned by the app's user: %v", err)
	}
	if _, err := ReadEnvFile(p, 0); err == nil {
		t.Errorf("owned by uid %d, read for root: no error", nobody)
	}
	writeEnv(t, p, 0o600, 0)
	if _, err := ReadEnvFile(p, nobody); err != nil {
		t.Errorf("owned by root: %v", err)
	}
	writeEnv(t, p, 0o602, 0)
	if _, err := ReadEnvFile(p, 0); err == nil {
		t.Errorf("mode 0602: no error")
	}
}

func TestExpandEnv(t *testing.T) {
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"/var/log/{app}/{app}.log", "/var/log/web/web.log"},
		{"{release}/static", "/srv/web/releases/7/static"},
		{`{"json": {app}}`, `{"json": web}`},
		{"{App} {apps} {", "{App} {apps} {"},
	}
	for _, tt := range tests {
		if got := ExpandEnv(tt.in, "web", "/srv/web/releases/7"); got != tt.want {
			t.Errorf("ExpandEnv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPassEnv(t *testing.T) {
	dir := fixture(t)
	cfg, err := Load(writeConfig(t, dir, "[supervisor]\npass_env = [\"SENTRY_DSN\", \"http_proxy\"]\n[app.p]\nallow_root = true\nuser = \"nobody\"\nkind = \"process\"\ncommand = [\"tool\"]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Supervisor.PassEnv; !reflect.DeepEqual(got, []string{"SENTRY_DSN", "http_proxy"}) {
		t.Errorf("pass_env = %q", got)
	}
	cfg, err = Load(writeConfig(t, dir, "[supervisor]\npass_env = [\"NOTIFY_SOCKET\", \"LISTEN_FDS\", \"WATCHDOG_USEC\", \"SUPCTL_SOCKET\", \"A=B\", \"OK\"]\n[app.p]\nallow_root = true\nkind = \"process\"\ncommand = [\"tool\"]\n"))
	checkGolden(t, dir, "pass_env", cfg, err)
}
