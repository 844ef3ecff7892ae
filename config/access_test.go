package config

import (
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestCommandResolvedAsAppUser: check resolves command and the health
// command as the app's user: a root-only (0700) directory on PATH is
// skipped for nobody, and a command nobody may not execute is an error
// naming the app's key and the user, at check time rather than at start.
func TestCommandResolvedAsAppUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: files owned by root, checked for nobody")
	}
	nogroup := lookupGID(t, "nobody")
	dir := fixture(t)
	mustMkdir(t, filepath.Join(dir, "rootonly"), 0o700)
	mustMkdir(t, filepath.Join(dir, "public"), 0o755)
	for _, f := range []struct {
		path string
		mode os.FileMode
		gid  int
	}{
		{"rootonly/tool", 0o755, 0},
		{"rootonly/secret", 0o755, 0},
		{"public/tool", 0o755, 0},
		{"public/owneronly", 0o744, 0},
		{"public/groupexec", 0o750, nogroup},
		{"public/othergroup", 0o750, 0},
	} {
		p := filepath.Join(dir, f.path)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), f.mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(p, 0, f.gid); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, f.mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", filepath.Join(dir, "rootonly")+":"+filepath.Join(dir, "public"))

	ok := `
[app.skips]
user = "nobody"
kind = "process"
command = ["tool"]
[app.group]
user = "nobody"
kind = "process"
command = ["groupexec"]
[app.root]
allow_root = true
kind = "process"
command = ["secret"]
[app.health]
user = "nobody"
kind = "process"
command = ["tool"]
[app.health.health]
command = ["tool"]
`
	cfg, err := Load(writeConfig(t, dir, ok))
	if err != nil {
		t.Fatal(err)
	}
	for app, want := range map[string]string{
		"skips": "public/tool", "group": "public/groupexec", "root": "rootonly/secret", "health": "public/tool",
	} {
		if got := cfg.App(app).Command[0]; got != filepath.Join(dir, want) {
			t.Errorf("app %s: command resolved to %s, want %s", app, got, filepath.Join(dir, want))
		}
	}
	if got := cfg.App("health").Health.Command[0]; got != filepath.Join(dir, "public/tool") {
		t.Errorf("health command resolved to %s, want public/tool", got)
	}

	bad := `
[app.hidden]
user = "nobody"
kind = "process"
command = ["secret"]
[app.path]
user = "nobody"
kind = "process"
command = ["$TMP/rootonly/tool"]
[app.mode]
user = "nobody"
kind = "process"
command = ["$TMP/public/owneronly"]
[app.notmine]
user = "nobody"
kind = "process"
command = ["othergroup"]
[app.hc]
user = "nobody"
kind = "process"
command = ["tool"]
[app.hc.health]
command = ["secret"]
`
	_, err = Load(writeConfig(t, dir, bad))
	if err == nil {
		t.Fatal("no error for commands nobody cannot execute")
	}
	got := strings.ReplaceAll(err.Error(), dir, "$TMP")
	for _, want := range []string{
		`:5: app.hidden.command: user "nobody" cannot execute $TMP/rootonly/secret: no search permission on $TMP/rootonly (mode 0700, owner 0, group 0): permission denied`,
		`:9: app.path.command: user "nobody" cannot execute $TMP/rootonly/tool: no search permission on $TMP/rootonly`,
		`:13: app.mode.command: user "nobody" cannot execute $TMP/public/owneronly: no execute permission for it (mode 0744, owner 0, group 0): permission denied`,
		`:17: app.notmine.command: user "nobody" cannot execute $TMP/public/othergroup: no execute permission for it (mode 0750`,
		`:23: app.hc.health.command: user "nobody" cannot execute $TMP/rootonly/secret`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("error lacks %q:\n%s", want, got)
		}
	}
}

func lookupGID(t *testing.T, name string) int {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Skipf("no user %s: %v", name, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	return gid
}

func mustMkdir(t *testing.T, dir string, mode os.FileMode) {
	t.Helper()
	if err := os.Mkdir(dir, mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, mode); err != nil {
		t.Fatal(err)
	}
}
