package daemon

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/internal/exitcode"
)

// TestCheckWebConfig: `supervisor check` reads http_web_config as the
// metrics endpoint would and refuses a bad one with exit status 2, naming
// the configuration file, the key, the web config file and the fault.
func TestCheckWebConfig(t *testing.T) {
	for _, tc := range []struct {
		name, web string
		wantErr   []string // none: check passes
	}{
		{name: "plain", web: "{}\n"},
		{name: "unknown key", web: "http_server_config:\n  http2: false\n", wantErr: []string{"http_server_config"}},
		{name: "plain password", web: "basic_auth_users:\n  prometheus: secret\n", wantErr: []string{"bcrypt"}},
		{name: "missing cert", web: "tls_server_config:\n  cert_file: none.crt\n  key_file: none.key\n", wantErr: []string{"none.crt"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			web := filepath.Join(dir, "web.yml")
			cfg := filepath.Join(dir, "supervisor.toml")
			toml := "[supervisor]\nrun_dir = \"" + filepath.Join(dir, "run") + "\"\nhttp_web_config = \"" + web + "\"\n\n" +
				"[app.sleep]\nallow_root = true\nkind = \"process\"\ncommand = [\"/bin/sleep\", \"60\"]\n"
			for path, body := range map[string]string{web: tc.web, cfg: toml} {
				if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var out, errb bytes.Buffer
			err := Run([]string{"check", "-c", cfg}, &out, &errb)
			if len(tc.wantErr) == 0 {
				if err != nil || !strings.Contains(out.String(), ": ok (1 apps)") {
					t.Fatalf("check: %v, stdout %q", err, out.String())
				}
				return
			}
			if code := exitcode.Code(err); code != ExitConfig {
				t.Fatalf("check: %v (exit %d), want exit %d", err, code, ExitConfig)
			}
			for _, w := range append([]string{cfg, "http_web_config", web}, tc.wantErr...) {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not name %q", err, w)
				}
			}
		})
	}
}

// TestCheckResolvesAsAppUser: `supervisor check` exits 2 for a command
// found only in a root-only directory on PATH when the app runs as nobody
// (its start would fail with permission denied), naming the key and user.
func TestCheckResolvesAsAppUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a root-only directory checked for nobody")
	}
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil { // nobody may search down to dir
			t.Fatal(err)
		}
	}
	private := filepath.Join(dir, "private")
	if err := os.Mkdir(private, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(private, "tool"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", private+":/usr/bin:/bin")
	cfg := filepath.Join(dir, "supervisor.toml")
	toml := "[supervisor]\nrun_dir = \"" + filepath.Join(dir, "run") + "\"\n\n[app.web]\nuser = \"nobody\"\nkind = \"process\"\ncommand = [\"tool\"]\n"
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	err := Run([]string{"check", "-c", cfg}, &out, &errb)
	if code := exitcode.Code(err); code != ExitConfig {
		t.Fatalf("check: %v (exit %d), want exit %d", err, code, ExitConfig)
	}
	for _, w := range []string{cfg + ":7: app.web.command", `user "nobody" cannot execute`, "no search permission on " + private} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not name %q", err, w)
		}
	}
}
