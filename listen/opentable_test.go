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
