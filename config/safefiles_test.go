package config

import (
	"os"
	"path/filepath"
	"testing"
)

// `supervisor check` refuses an env_file or log_file reached through a link
// the app's user could have planted (a symbolic link, a hard link to a
// root-only file, a symbolic link to a directory), naming file, line and
// key; the secret is never read into a configuration.
func TestPlantedLinksRefused(t *testing.T) {
	needRoot(t)
	nobody := lookupUID(t, "nobody")
	dir := fixture(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	secrets := filepath.Join(dir, "secrets")
	must(os.Mkdir(secrets, 0o700))
	secret := filepath.Join(secrets, "secret.env")
	writeEnv(t, secret, 0o600, -1)
	home := filepath.Join(dir, "home")
	must(os.Mkdir(home, 0o755))
	must(os.Chown(home, nobody, nobody))
	plant := func(name, target string, hard bool) {
		p := filepath.Join(home, name)
		if hard {
			must(os.Link(target, p))
			return
		}
		must(os.Symlink(target, p))
		must(os.Lchown(p, nobody, nobody))
	}
	plant("sym.env", secret, false)
	plant("hard.env", secret, true)
	plant("secrets", secrets, false)
	plant("app.log", secret, false)
	plant("hard.log", secret, true)
	writeEnv(t, filepath.Join(home, "ok.env"), 0o600, nobody)
	cfg, err := Load(writeConfig(t, dir, `[app.sym]
user = "nobody"
env_file = "home/sym.env"
kind = "process"
command = ["tool"]
[app.hard]
user = "nobody"
env_file = "home/hard.env"
kind = "process"
command = ["tool"]
[app.parent]
user = "nobody"
env_file = "home/secrets/secret.env"
kind = "process"
command = ["tool"]
[app.logsym]
user = "nobody"
env_file = "home/ok.env"
log = "file"
log_file = "home/app.log"
kind = "process"
command = ["tool"]
[app.loghard]
user = "nobody"
log = "file"
log_file = "home/hard.log"
kind = "process"
command = ["tool"]
[app.logparent]
user = "nobody"
log = "file"
log_file = "home/secrets/app.log"
kind = "process"
command = ["tool"]
`))
	checkGolden(t, dir, "planted_links", cfg, err)
}
