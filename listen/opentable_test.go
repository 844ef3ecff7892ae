package listen

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// TestOpenTable: each listener gets the steering its kind, the app's
// steering setting and the kernel allow, with why a shared one is shared.
func TestOpenTable(t *testing.T) {
	for _, tc := range []struct {
		name      string
		steering  config.Steering
		wantModes []steer.Mode
		wantWhys  []string
	}{
		{"auto without BPF", config.SteeringAuto, []steer.Mode{steer.ModeRename, steer.ModeShared}, []string{"", "no BPF here"}},
		{"shared", config.SteeringShared, []steer.Mode{steer.ModeShared, steer.ModeShared}, []string{`steering = "shared"`, `steering = "shared"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "web.sock")
			app := &config.App{Name: "web", Steering: tc.steering, Listen: []config.Listener{
				testUnixListener(path, 0o660, "", ""),
				{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0"},
			}}
			tab, whys, err := OpenTable(app, "no BPF here")
			if err != nil {
				t.Fatal(err)
			}
			var modes []steer.Mode
			for _, e := range tab.Entries() {
				modes = append(modes, e.Mode())
			}
			if !slices.Equal(modes, tc.wantModes) || !slices.Equal(whys, tc.wantWhys) {
				t.Errorf("modes %v, whys %q; want %v, %q", modes, whys, tc.wantModes, tc.wantWhys)
			}
			if err := tab.Close(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("%s is still there after Close: %v", path, err)
			}
		})
	}
}

// TestBoundAgain: a TCP listener is bound again at the address its closed
// socket had (a configured port 0 keeps its port); a Unix one at its path.
func TestBoundAgain(t *testing.T) {
	app := &config.App{Name: "web", Listen: []config.Listener{
		{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0"},
		{Raw: "unix:///run/web.sock", Network: config.NetUnix, Address: "/run/web.sock"},
	}}
	closed := []Entry{
		{Socket: &Socket{Spec: app.Listen[0], Bound: "127.0.0.1:40123"}},
		{Socket: &Socket{Spec: app.Listen[1], Bound: "/run/web.sock"}},
	}
	got := boundAgain(app, closed)
	if got.Listen[0].Address != "127.0.0.1:40123" || got.Listen[0].Raw != "tcp://127.0.0.1:0" {
		t.Errorf("tcp listener: %+v", got.Listen[0])
	}
	if got.Listen[1].Address != "/run/web.sock" {
		t.Errorf("unix listener: %+v", got.Listen[1])
	}
	if app.Listen[0].Address != "127.0.0.1:0" {
		t.Errorf("the configured app changed: %+v", app.Listen[0])
	}
}
