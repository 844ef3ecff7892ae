package supervise

import (
	"errors"
	"testing"

	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
)

// TestOwnerRestartStrategy: with strategy restart the old generation has
// exited before the new one is spawned, and a new one that fails its gate is
// replaced by the previous release, never running beside another.
func TestOwnerRestartStrategy(t *testing.T) {
	cfg := testApp()
	cfg.Reload.Strategy = strategy.Restart
	r := startRig(t, cfg)
	old := r.running()

	done := r.async(reloadMsg{call: newCall()})
	g := r.next()
	if !old.Exited() {
		t.Fatal("the new generation was spawned while the old one runs")
	}
	g.verdict <- nil
	if err := reply(t, done); err != nil {
		t.Fatalf("reload: %v", err)
	}
	s := r.waitFor("the new generation serving", func(s status.AppSnapshot) bool { return s.Generation == g.id && !s.Reloading })
	if s.LastReload == nil || s.LastReload.Strategy != "restart" || s.LastReload.Result != reload.OutcomeOK {
		t.Errorf("last reload %+v", s.LastReload)
	}

	done = r.async(reloadMsg{call: newCall()})
	bad := r.next()
	if !g.Exited() {
		t.Fatal("the second reload's generation was spawned while the serving one runs")
	}
	bad.verdict <- errors.New("failed 3 checks in a row: status 500")
	back := r.next()
	if !bad.Exited() {
		t.Fatal("the previous release was started again while the failed generation runs")
	}
	back.verdict <- nil
	err := reply(t, done)
	if out, _ := reload.OutcomeOf(err); out != reload.OutcomeRolledBack {
		t.Fatalf("reload of a failing release: %v (%s), want rolled_back", err, out)
	}
	r.waitFor("the previous release serving", func(s status.AppSnapshot) bool { return s.Generation == back.id && !s.Reloading })
	if n := len(r.env.live()); n != 1 {
		t.Errorf("%d live generations, want 1", n)
	}
	r.checkInvariant()
}
