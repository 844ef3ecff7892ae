package supctl

import (
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
)

// TestStatusSaysUsr2IsNotGated: status shows each listener's steering, and
// a usr2 reload of a steered app says that steering did not gate it.
func TestStatusSaysUsr2IsNotGated(t *testing.T) {
	now := time.Now()
	app := func(strategy, steering string) control.AppStatus {
		return control.AppStatus{Name: "web", State: control.StateRunning,
			Listeners:  []control.Listener{{Address: "unix:///run/web.sock", Steering: steering}},
			LastReload: &control.LastReload{Result: "ok", Strategy: strategy, Started: now}}
	}
	for _, tt := range []struct {
		strategy, steering string
		ungated            bool
	}{{"usr2", "rename", true}, {"usr2", "bpf", true}, {"usr2", "shared", false}, {"swap", "rename", false}} {
		var b strings.Builder
		PrintStatus(&b, []control.AppStatus{app(tt.strategy, tt.steering)}, now)
		out := b.String()
		if !strings.Contains(out, "unix:///run/web.sock ("+tt.steering+")") {
			t.Errorf("%s/%s: no listener mode in:\n%s", tt.strategy, tt.steering, out)
		}
		if got := strings.Contains(out, "not traffic-gated"); got != tt.ungated {
			t.Errorf("%s/%s: says not traffic-gated %v, want %v:\n%s", tt.strategy, tt.steering, got, tt.ungated, out)
		}
	}
}
