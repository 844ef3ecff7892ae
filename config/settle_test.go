package config

import (
	"strings"
	"testing"
	"time"
)

// start_settle: a process app's own value is kept; a Gunicorn app, or a
// value not below start_timeout, is an error naming the key's line.
func TestStartSettle(t *testing.T) {
	dir := fixture(t)
	const process = "[app.worker]\nallow_root = true\nkind = \"process\"\ncommand = [\"tool\"]\n"
	const gunicorn = "[app.web]\nallow_root = true\nvirtualenv = \"venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:8000\"]\n"
	tests := []struct {
		name, text string
		want       time.Duration
		err        string
	}{
		{"default", process, DefaultStartSettle, ""},
		{"set", process + "start_settle = \"5s\"\n", 5 * time.Second, ""},
		{"gunicorn", gunicorn + "start_settle = \"5s\"\n", 0, ":6: app.web.start_settle: only valid for kind \"process\""},
		{"not below start_timeout", process + "start_timeout = \"2s\"\nstart_settle = \"2s\"\n", 0, ":6: app.worker.start_settle: 2s must be shorter than start_timeout (2s)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Load(writeConfig(t, dir, tc.text))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("error %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Apps[0].StartSettle; got != tc.want {
				t.Errorf("StartSettle %v, want %v", got, tc.want)
			}
		})
	}
}
