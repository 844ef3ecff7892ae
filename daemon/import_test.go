package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/internal/exitcode"
)

// TestImport: `supervisor import` prints the TOML on stdout and the
// warnings on stderr with exit 0, and exits 2 with nothing on stdout for no
// file, an option, a missing file or a file that is not INI; check on a
// supervisord file exits 2 pointing at import.
func TestImport(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "web.conf")
	bad := filepath.Join(dir, "bad.conf")
	for path, text := range map[string]string{
		good: "[program:web]\ncommand=/srv/web/venv/bin/gunicorn -b 127.0.0.1:8000 --daemon app:app\nuser=www-data\n",
		bad:  "command=outside any section\n",
	} {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"converts", []string{"import", good}, 0, `listen = ["tcp://127.0.0.1:8000"]`, "warning: " + good + ":2: [program:web] command: --daemon dropped"},
		{"no file", []string{"import"}, ExitConfig, "", "name at least one"},
		{"option", []string{"import", "-c", good}, ExitConfig, "", `unknown option "-c"`},
		{"missing", []string{"import", filepath.Join(dir, "none.conf")}, ExitConfig, "", "none.conf: cannot read"},
		{"not INI", []string{"import", bad}, ExitConfig, "", bad + ":1:"},
		{"check on INI", []string{"check", "-c", good}, ExitConfig, "", good + ":1: [program:web]: this looks like a supervisord configuration: convert it with `supervisor import " + good + "`"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(tc.args, &out, &errb)
			if code := exitcode.Code(err); code != tc.code {
				t.Fatalf("exit %d (%v), want %d", code, err, tc.code)
			}
			if tc.stdout == "" && out.Len() > 0 || !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout %q, want %q", out.String(), tc.stdout)
			}
			msg := errb.String()
			if err != nil {
				msg += err.Error()
			}
			if !strings.Contains(msg, tc.stderr) {
				t.Errorf("stderr and error %q, want %q", msg, tc.stderr)
			}
		})
	}
}
