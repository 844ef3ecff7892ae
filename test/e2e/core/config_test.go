package core

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// badConfigBase is a valid configuration; each case of TestBadConfig
// replaces the line "@BAD@" with one broken line.
const badConfigBase = `[supervisor]
control_socket = "@DIR@/ctl.sock"
http = ""
run_dir = "@DIR@/run"

[app.web]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:0"]
@BAD@
`

// TestBadConfig: `supervisor check -c F` and `supervisor -c F` print one
// line naming file:line and key, exit 2, and start nothing.
func TestBadConfig(t *testing.T) {
	sup, _ := e2e.Binaries(t)
	venv := testenv.Venv(t)
	tests := []struct {
		name string
		line string // replaces @BAD@ (line 11)
		key  string
		want string // further text the message must contain
	}{
		{name: "unknown key", line: `stop_timout = "10s"`, key: "app.web.stop_timout", want: "unknown key"},
		{name: "bad duration", line: `stop_timeout = "10x"`, key: "app.web.stop_timeout", want: "invalid duration"},
		{name: "missing virtualenv", line: `virtualenv = "@DIR@/no-such-venv"`, key: "app.web.virtualenv", want: "no-such-venv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := testenv.ShortTempDir(t)
			if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
				t.Fatal(err)
			}
			testenv.WriteRelease(t, filepath.Join(dir, "app"), testenv.Release{Version: "1"})
			text := strings.Replace(badConfigBase, "@BAD@", tt.line, 1)
			if tt.name == "missing virtualenv" {
				// The only virtualenv line is the broken one.
				text = strings.Replace(text, "virtualenv = \"@VENV@\"\n", "", 1)
			}
			text = e2e.Expand(text, dir, venv, filepath.Join(dir, "ctl.sock"))
			cfg := filepath.Join(dir, "supervisor.toml")
			if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			line := 1 + strings.Count(text[:strings.Index(text, strings.Replace(tt.line, "@DIR@", dir, 1))], "\n")
			wantPrefix := fmt.Sprintf("%s:%d: %s", cfg, line, tt.key)

			for _, args := range [][]string{{"check", "-c", cfg}, {"-c", cfg}} {
				key, mark := testenv.MarkEnv(t)
				cmd := exec.Command(sup, args...)
				cmd.Env = append(os.Environ(), key+"="+mark)
				var stdout, stderr bytes.Buffer
				cmd.Stdout, cmd.Stderr = &stdout, &stderr
				start := time.Now()
				err := cmd.Run()
				took := time.Since(start)
				code := 0
				var ee *exec.ExitError
				if errors.As(err, &ee) {
					code = ee.ExitCode()
				} else if err != nil {
					t.Fatalf("run %v: %v", args, err)
				}
				out := stdout.String() + stderr.String()
				lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
				t.Logf("supervisor %s: exit %d in %s: %q", strings.Join(args, " "), code, took.Round(time.Millisecond), out)
				if code != 2 {
					t.Errorf("%v: exit %d, want 2", args, code)
				}
				if len(lines) != 1 {
					t.Errorf("%v: %d lines of output, want 1:\n%s", args, len(lines), out)
				}
				if !strings.Contains(lines[0], wantPrefix) || !strings.Contains(lines[0], tt.want) {
					t.Errorf("%v: message %q should contain %q and %q", args, lines[0], wantPrefix, tt.want)
				}
				// Nothing was started: no process carries the mark, no control
				// socket or run directory was made.
				if left := testenv.Leftovers(mark); len(left) != 0 {
					t.Errorf("%v: processes started: %v", args, left)
				}
				testenv.AssertNoLeftovers(t, mark, time.Second)
				for _, p := range []string{filepath.Join(dir, "ctl.sock"), filepath.Join(dir, "run")} {
					if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("%v: %s exists (err %v): something was started", args, p, err)
					}
				}
			}
		})
	}
}
