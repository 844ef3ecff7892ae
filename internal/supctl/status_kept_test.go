package supctl

import (
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
)

// TestStatusShowsKept: status names the generation kept for a rollback
// and the time left in its window; nothing without one.
func TestStatusShowsKept(t *testing.T) {
	now := time.Now()
	app := control.AppStatus{Name: "web", State: control.StateRunning,
		Kept: &control.Kept{Generation: 3, PID: 4242, Release: "/srv/web/releases/41", Until: now.Add(90 * time.Second)}}
	var b strings.Builder
	PrintStatus(&b, []control.AppStatus{app}, now)
	if want := "web: kept for rollback: generation 3 (pid 4242, /srv/web/releases/41), 1m30s left"; !strings.Contains(b.String(), want) {
		t.Errorf("status lacks %q:\n%s", want, b.String())
	}
	app.Kept = nil
	b.Reset()
	PrintStatus(&b, []control.AppStatus{app}, now)
	if strings.Contains(b.String(), "kept") {
		t.Errorf("status without a kept generation mentions one:\n%s", b.String())
	}
}
