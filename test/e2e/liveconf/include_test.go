package liveconf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
)

// sleeper is a process app's table.
func sleeper(name, extra string) string {
	return "\n[app." + name + "]\nallow_root = true\nkind = \"process\"\nstart_settle = \"100ms\"\ncommand = [\"/bin/sleep\", \"3600\"]\n" + extra
}

// TestIncludeRereadUpdate: apps of conf.d/*.toml run; `supctl reread` and
// `supctl update` see a file added to conf.d and an edit to an included
// file; a broken included file changes nothing and names its file and line.
func TestIncludeRereadUpdate(t *testing.T) {
	confd := func(dir string) string { return filepath.Join(dir, "conf.d") }
	s := e2e.Start(t, e2e.Options{
		Config: e2e.Config{Extra: "include = [\"conf.d/*.toml\"]\n"}.String() + sleeper("main", ""),
		Setup: func(dir string) {
			if err := os.Mkdir(confd(dir), 0o755); err != nil {
				t.Fatal(err)
			}
			writeFile(t, filepath.Join(confd(dir), "a.toml"), sleeper("a", ""))
		},
	})
	s.WaitState("main", control.StateRunning, 30*time.Second)
	a := s.WaitState("a", control.StateRunning, 30*time.Second)

	writeFile(t, filepath.Join(confd(s.Dir), "a.toml"), sleeper("a", "env = { X = \"1\" }\n"))
	writeFile(t, filepath.Join(confd(s.Dir), "b.toml"), sleeper("b", ""))
	out, code := s.SupctlRun("reread")
	if code != 0 || !regexpLine(out, "b", "added") || !regexpLine(out, "a", "changed") || !regexpLine(out, "main", "unchanged") {
		t.Fatalf("supctl reread: exit %d:\n%s\nwant b added, a changed, main unchanged", code, out)
	}
	if out, code := s.SupctlRun("update"); code != 0 {
		t.Fatalf("supctl update: exit %d:\n%s", code, out)
	}
	s.WaitState("b", control.StateRunning, 30*time.Second)
	if got := e2e.FindApp(t, s.Status(), "a"); got.MasterPID == a.MasterPID {
		t.Errorf("a's env changed but its process %d was not replaced", a.MasterPID)
	}

	writeFile(t, filepath.Join(confd(s.Dir), "c.toml"), "\n[app.c]\nkind = \"process\"\nworkers = \n")
	out, code = s.SupctlRun("update")
	want := filepath.Join(confd(s.Dir), "c.toml") + ":4: syntax error"
	if code == 0 || !strings.Contains(out, want) {
		t.Errorf("update with a broken included file: exit %d:\n%s\nwant it to name %s", code, out, want)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// regexpLine reports whether out has a line naming app and then word.
func regexpLine(out, app, word string) bool {
	for _, l := range strings.Split(out, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.TrimSuffix(f[0], ":") == app && strings.Contains(l, word) {
			return true
		}
	}
	return false
}
