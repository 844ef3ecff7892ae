package config

import (
	"strings"
	"testing"
)

// TestLoadApart: problems confined to [app.NAME] tables (not listen or a
// log key) set those apps aside in Broken, instances under their base
// name, with the whole *Errors returned too; any other problem gives no
// configuration, as Load; a valid file gives no error and no Broken.
func TestLoadApart(t *testing.T) {
	const web = "[app.web]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:8000\"]\n"
	for _, tc := range []struct {
		name, text string
		broken     []string // nil: no configuration returned
		errKey     string
	}{
		{"valid", web, []string{}, ""},
		{"bad command", web + "[app.api]\nallow_root = true\ncommand = [\"$TMP/gone\"]\nkind = \"process\"\n", []string{"api"}, "app.api.command"},
		{"bad instances", web + "[app.w]\nallow_root = true\nkind = \"process\"\ninstances = 2\ncommand = [\"/bin/sleep\", \"1\"]\nstop_timeout = \"soon\"\n", []string{"w:0", "w:1"}, "app.w.stop_timeout"},
		{"bad listen", web + "[app.api]\nallow_root = true\nvirtualenv = \"$TMP/venv\"\nwsgi = \"app:app\"\nlisten = [\"nowhere\"]\n", nil, "app.api.listen"},
		{"bad supervisor", "[supervisor]\nshutdown_timeout = \"x\"\n" + web, nil, "supervisor.shutdown_timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := fixture(t)
			path := writeConfig(t, dir, tc.text)
			cfg, err := LoadApart(path)
			if tc.errKey == "" {
				if err != nil || cfg == nil || len(cfg.Broken) != 0 {
					t.Fatalf("LoadApart: %v, configuration %v", err, cfg)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.errKey) {
				t.Fatalf("LoadApart error %v, want one naming %s", err, tc.errKey)
			}
			if tc.broken == nil {
				if cfg != nil {
					t.Fatalf("LoadApart returned a configuration for %q", err)
				}
				return
			}
			if cfg == nil || len(cfg.Broken) != len(tc.broken) || cfg.App("web") == nil {
				t.Fatalf("LoadApart: %v, want %v set aside and web kept", cfg, tc.broken)
			}
			for _, name := range tc.broken {
				if e := cfg.Broken[name]; e == nil || !strings.Contains(e.Error(), tc.errKey) || !strings.Contains(e.Error(), path) {
					t.Errorf("Broken[%s] = %v, want the file and %s", name, e, tc.errKey)
				}
			}
		})
	}
}
