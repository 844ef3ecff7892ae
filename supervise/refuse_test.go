package supervise

import (
	"errors"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/status"
)

// TestOwnerRefusesOnlyAfterStopByRequest: a crash, a restart and a stop
// without refuse (shutdown) keep the listeners; a stop by request closes
// them once, and only after nothing runs.
func TestOwnerRefusesOnlyAfterStopByRequest(t *testing.T) {
	cfg := testApp()
	r := startRig(t, cfg)
	g := r.running()
	if err := r.do(restartMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	if !g.Exited() {
		t.Fatalf("restart returned before %s exited", g)
	}
	g = r.next()
	g.verdict <- nil
	r.waitState(status.Running)
	g.crash(1)
	r.waitFor("restart after the crash", func(s status.AppSnapshot) bool { return s.Restarts == 1 })
	if n := r.env.refuses(); n != 0 {
		t.Fatalf("restart and crash closed the listeners %d times", n)
	}
	if err := r.do(stopMsg{call: newCall(), refuse: true}); err != nil {
		t.Fatal(err)
	}
	if n := r.env.refuses(); n != 1 {
		t.Errorf("stop by request closed the listeners %d times, want 1", n)
	}
	if s := r.snap(); s.State != status.Stopped {
		t.Errorf("after stop: %s", s.State)
	}
}

// TestOwnerStartFailsWhenRelistenFails: a start whose listeners cannot be
// bound again counts as a failed start (Backoff) naming the error, and
// spawns nothing.
func TestOwnerStartFailsWhenRelistenFails(t *testing.T) {
	r := startRig(t, testApp())
	r.env.mu.Lock()
	r.env.relistenErr = errors.New("listen tcp://127.0.0.1:8000: bind: address already in use")
	r.env.mu.Unlock()
	if err := r.do(startMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	s := r.waitState(status.Backoff)
	if !strings.Contains(s.Message, "address already in use") {
		t.Errorf("message %q does not name the bind error", s.Message)
	}
	r.noSpawn(0)
}
