package config

import (
	"path/filepath"
	"testing"
)

// TestSteeringDefault: [supervisor] steering is every app's default; an
// app's own key overrides it.
func TestSteeringDefault(t *testing.T) {
	apps := `
[app.a]
allow_root = true
kind = "process"
command = ["/bin/true"]
[app.b]
allow_root = true
kind = "process"
command = ["/bin/true"]
steering = "auto"
`
	for _, tt := range []struct {
		sup  string
		a, b Steering
	}{
		{"", SteeringAuto, SteeringAuto},
		{"[supervisor]\nsteering = \"shared\"\n", SteeringShared, SteeringAuto},
		{"[supervisor]\nsteering = \"auto\"\n", SteeringAuto, SteeringAuto},
	} {
		cfg, err := Parse(filepath.Join(t.TempDir(), "s.toml"), []byte(tt.sup+apps))
		if err != nil {
			t.Fatalf("%q: %v", tt.sup, err)
		}
		if a, b := cfg.App("a").Steering, cfg.App("b").Steering; a != tt.a || b != tt.b {
			t.Errorf("%q: a %s b %s, want %s %s", tt.sup, a, b, tt.a, tt.b)
		}
	}
	if _, err := Parse(filepath.Join(t.TempDir(), "s.toml"), []byte("[supervisor]\nsteering = \"bpf\"\n"+apps)); err == nil {
		t.Error(`[supervisor] steering = "bpf": no error`)
	}
}
