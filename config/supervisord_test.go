package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSupervisordINI: a supervisord file given to check is refused at its
// first supervisord section, pointing at `supervisor import`; a TOML file
// whose strings merely mention such a section is not.
func TestSupervisordINI(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		line       int // 0: not recognised as supervisord's
	}{
		{"program", "; conf.d/web.conf\n[program:web]\ncommand=/srv/venv/bin/gunicorn app:app\n", 2},
		{"supervisord", "[unix_http_server]\nfile=/run/supervisor.sock\n[supervisord]\nnodaemon=true\n", 1},
		{"group", "[group:shop]\nprograms=web,worker\n", 1},
		{"indented", "  [program:web]  \ncommand=x\n", 1},
		{"toml", "[supervisor]\n\n[app.x]\nkind = \"process\"\ncommand = [\"/bin/echo\", \"[program:x]\"]\n", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "web.conf")
			if err := os.WriteFile(path, []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(path)
			hint := "convert it with `supervisor import " + path + "`"
			if tc.line == 0 {
				if err != nil && strings.Contains(err.Error(), hint) {
					t.Fatalf("a TOML file taken for supervisord's: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), hint) {
				t.Fatalf("Load: %v, want the hint %q", err, hint)
			}
			if want := path + ":" + string(rune('0'+tc.line)) + ":"; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error %q does not start with %q", err, want)
			}
		})
	}
}
