package supervise

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
	"github.com/gunisup/supervisor/upgrade"
)

func TestOwnerStart(t *testing.T) {
	r := startRig(t, testApp())
	if err := r.do(startMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	g := r.next()
	if s := r.snap(); s.State != status.Starting || s.Generation != g.id {
		t.Fatalf("after start: %s gen %d, want starting gen %d", s.State, s.Generation, g.id)
	}
	g.verdict <- nil
	s := r.waitState(status.Running)
	if !s.Healthy || s.MasterPID != g.Info().PID {
		t.Errorf("running: healthy %v pid %d", s.Healthy, s.MasterPID)
	}
	if err := r.do(startMsg{newCall()}); err != nil { // already running: nothing happens
		t.Fatal(err)
	}
	r.noSpawn(20 * time.Millisecond)
	r.checkInvariant()
}

func TestOwnerCrashBackoffRestart(t *testing.T) {
	cfg := testApp()
	cfg.Backoff.Initial, cfg.Backoff.Max = 50*time.Millisecond, time.Second
	r := startRig(t, cfg)
	g := r.running()
	g.crash(3)
	s := r.waitState(status.Backoff)
	if s.Restarts != 1 || s.Backoff != 50*time.Millisecond || s.LastExit == nil || s.LastExit.Code != 3 {
		t.Errorf("backoff: restarts %d backoff %v last exit %v", s.Restarts, s.Backoff, s.LastExit)
	}
	g2 := r.next()
	g2.verdict <- nil
	r.waitState(status.Running)
	r.checkInvariant()
}

func TestOwnerCrashLoopFailed(t *testing.T) {
	cfg := testApp()
	cfg.Backoff.CrashLimit = 2
	r := startRig(t, cfg)
	r.do(startMsg{newCall()})
	for i := 0; i < 3; i++ {
		r.next().crash(1)
	}
	s := r.waitState(status.Failed)
	if !strings.Contains(s.Message, "crash loop") {
		t.Errorf("failed message %q", s.Message)
	}
	// Still retried at the capped delay.
	g := r.next()
	g.verdict <- nil
	r.waitState(status.Running)
}

func TestOwnerRestartPolicyNever(t *testing.T) {
	cfg := testApp()
	cfg.Restart = config.RestartNever
	r := startRig(t, cfg)
	r.running().crash(0)
	s := r.waitState(status.Stopped)
	if !strings.Contains(s.Message, "never") {
		t.Errorf("message %q", s.Message)
	}
	r.noSpawn(20 * time.Millisecond)
}

func TestOwnerSpawnFailure(t *testing.T) {
	r := startRig(t, testApp())
	r.env.mu.Lock()
	r.env.spawnErr = errors.New("app web: no such virtualenv")
	r.env.mu.Unlock()
	r.do(startMsg{newCall()})
	s := r.waitFor("backoff with the spawn error", func(s status.AppSnapshot) bool {
		return (s.State == status.Backoff || s.State == status.Failed) && strings.Contains(s.Message, "no such virtualenv")
	})
	if s.Generation != 0 {
		t.Errorf("generation %d after a failed spawn", s.Generation)
	}
	r.env.mu.Lock()
	r.env.spawnErr = nil
	r.env.mu.Unlock()
	r.next().verdict <- nil
	r.waitState(status.Running)
}

func TestOwnerStopDuringStart(t *testing.T) {
	r := startRig(t, testApp())
	r.do(startMsg{newCall()})
	g := r.next()
	if err := r.do(stopMsg{call: newCall()}); err != nil {
		t.Fatal(err)
	}
	if !g.Exited() {
		t.Errorf("stop returned before %s exited", g)
	}
	if s := r.snap(); s.State != status.Stopped || s.Generation != 0 {
		t.Errorf("after stop: %s gen %d", s.State, s.Generation)
	}
	r.noSpawn(20 * time.Millisecond)
}

func TestOwnerStopDuringBackoff(t *testing.T) {
	cfg := testApp()
	cfg.Backoff.Initial, cfg.Backoff.Max = time.Hour, time.Hour
	r := startRig(t, cfg)
	r.running().crash(1)
	r.waitState(status.Backoff)
	if err := r.do(stopMsg{call: newCall()}); err != nil {
		t.Fatal(err)
	}
	if s := r.snap(); s.State != status.Stopped || !s.NextRestart.IsZero() {
		t.Errorf("after stop: %s next restart %v", s.State, s.NextRestart)
	}
}

func TestOwnerStopTwice(t *testing.T) {
	r := startRig(t, testApp())
	r.env.stubborn = true
	g := r.running()
	first, second := r.async(stopMsg{call: newCall()}), r.async(stopMsg{call: newCall()})
	r.waitState(status.Stopping)
	g.crash(0)
	for _, ch := range []<-chan error{first, second} {
		if err := reply(t, ch); err != nil {
			t.Errorf("stop: %v", err)
		}
	}
	if err := r.do(stopMsg{call: newCall()}); err != nil {
		t.Errorf("stop of a stopped app: %v", err)
	}
	if s := r.snap(); s.State != status.Stopped {
		t.Errorf("state %s", s.State)
	}
}

func TestOwnerStartDuringStop(t *testing.T) {
	r := startRig(t, testApp())
	r.env.stubborn = true
	g := r.running()
	stop := r.async(stopMsg{call: newCall()})
	r.waitState(status.Stopping)
	if err := r.do(startMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	g.crash(0)
	if err := reply(t, stop); err != nil {
		t.Fatal(err)
	}
	r.next().verdict <- nil
	r.waitState(status.Running)
	r.checkInvariant()
}

func TestOwnerReloadDuringStop(t *testing.T) {
	r := startRig(t, testApp())
	r.env.stubborn = true
	g := r.running()
	stop := r.async(stopMsg{call: newCall()})
	r.waitState(status.Stopping)
	err := r.do(reloadMsg{call: newCall()})
	if !errors.Is(err, ErrNotRunning) {
		t.Errorf("reload during stop: %v, want ErrNotRunning", err)
	}
	r.noSpawn(10 * time.Millisecond)
	g.crash(0)
	if err := reply(t, stop); err != nil {
		t.Fatal(err)
	}
}

func TestOwnerReloadOK(t *testing.T) {
	r := startRig(t, testApp())
	old := r.running()
	done := r.async(reloadMsg{call: newCall()})
	g := r.next()
	if s := r.snap(); !s.Reloading || s.Generation != old.id {
		t.Errorf("during the reload: reloading %v gen %d", s.Reloading, s.Generation)
	}
	r.checkInvariant()
	g.verdict <- nil
	if err := reply(t, done); err != nil {
		t.Fatalf("reload: %v", err)
	}
	if !old.Exited() {
		t.Errorf("old %s not drained", old)
	}
	s := r.snap()
	if s.State != status.Running || s.Generation != g.id || s.Reloading || s.LastReload == nil || s.LastReload.Result != "ok" {
		t.Errorf("after: %s gen %d reloading %v last %+v", s.State, s.Generation, s.Reloading, s.LastReload)
	}
	r.checkInvariant()
}

func TestOwnerReloadBusy(t *testing.T) {
	r := startRig(t, testApp())
	r.running()
	done := r.async(reloadMsg{call: newCall()})
	g := r.next()
	if err := r.do(reloadMsg{call: newCall()}); !errors.Is(err, ErrBusy) {
		t.Errorf("second reload: %v, want ErrBusy", err)
	}
	g.verdict <- nil
	if err := reply(t, done); err != nil {
		t.Fatal(err)
	}
}

func TestOwnerReloadFailureRollback(t *testing.T) {
	r := startRig(t, testApp())
	old := r.running()
	done := r.async(reloadMsg{call: newCall()})
	g := r.next()
	g.verdict <- errors.New("status 500")
	err := reply(t, done)
	if err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Fatalf("reload: %v, want the failure", err)
	}
	waitExit(t, g)
	s := r.snap()
	if old.Exited() || s.Generation != old.id || s.State != status.Running || s.LastReload.Result != "rolled_back" {
		t.Errorf("after the failure: old exited %v, gen %d, %s, last %+v", old.Exited(), s.Generation, s.State, s.LastReload)
	}
	r.checkInvariant()
}

func TestOwnerHealthUnhealthyAfterN(t *testing.T) {
	cfg := testApp()
	cfg.Health.Enabled, cfg.Health.Interval, cfg.Health.UnhealthyAfter = true, 2*time.Millisecond, 3
	r := startRig(t, cfg)
	g := r.running()
	r.env.setHealth(errors.New("status 503"))
	s := r.waitFor("unhealthy", func(s status.AppSnapshot) bool { return !s.Healthy })
	if s.State != status.Running || !strings.Contains(s.Message, "checks failed: status 503") || s.Generation != g.id {
		t.Errorf("unhealthy: %s %q gen %d", s.State, s.Message, s.Generation)
	}
	r.env.setHealth(nil)
	s = r.waitFor("healthy again", func(s status.AppSnapshot) bool { return s.Healthy })
	if s.Message != "" {
		t.Errorf("message %q once healthy", s.Message)
	}
	r.noSpawn(10 * time.Millisecond) // no restart without restart_when_unhealthy
}

func TestOwnerRestartWhenUnhealthy(t *testing.T) {
	cfg := testApp()
	cfg.Health.Enabled, cfg.Health.Interval, cfg.Health.RestartWhenUnhealthy = true, 2*time.Millisecond, true
	r := startRig(t, cfg)
	old := r.running()
	r.env.setHealth(errors.New("status 503"))
	g := r.next() // the overlap reload's new generation
	r.env.setHealth(nil)
	g.verdict <- nil
	s := r.waitFor("the new generation serving", func(s status.AppSnapshot) bool { return s.Generation == g.id && !s.Reloading })
	waitExit(t, old)
	if s.LastReload == nil || s.LastReload.Strategy != "overlap" {
		t.Errorf("last reload %+v", s.LastReload)
	}
	r.checkInvariant()
}

func TestOwnerFreeze(t *testing.T) {
	r := startRig(t, testApp())
	g := r.running()
	thaw := make(chan struct{})
	var st upgrade.AppHandover
	if err := r.do(freezeMsg{call: newCall(), state: &st, thaw: thaw}); err != nil {
		t.Fatal(err)
	}
	if st.Name != "web" || !st.Want || !st.Healthy || st.Gen != nil {
		t.Errorf("frozen state %+v (a fake generation is not handed over)", st)
	}
	ping := r.async(pingMsg{newCall()})
	select {
	case <-ping:
		t.Fatal("a frozen owner answered")
	case <-time.After(10 * time.Millisecond):
	}
	close(thaw)
	if err := reply(t, ping); err != nil {
		t.Fatal(err)
	}
	done := r.async(reloadMsg{call: newCall()})
	n := r.next()
	if err := r.do(freezeMsg{call: newCall(), state: &st, thaw: thaw}); !errors.Is(err, ErrBusy) {
		t.Errorf("freeze during a reload: %v, want ErrBusy", err)
	}
	n.verdict <- nil
	if err := reply(t, done); err != nil {
		t.Fatal(err)
	}
	waitExit(t, g)
	r.waitFor("no reload in progress", func(s status.AppSnapshot) bool { return !s.Reloading })
	if err := r.do(freezeMsg{call: newCall(), state: &st, thaw: thaw}); err != nil {
		t.Fatalf("freeze after the reload: %v", err)
	}
	if st.Reloads[string(reload.OutcomeOK)] != 1 {
		t.Errorf("handed-over reload counts %v, want ok=1 (metrics export them after an upgrade)", st.Reloads)
	}
}

// TestOwnerRestartDuringReload: a restart while a swap reload checks its
// new generation cancels the reload (its generation is stopped), then
// retires the old one and starts exactly one new generation.
func TestOwnerRestartDuringReload(t *testing.T) {
	r := startRig(t, testApp())
	old := r.running()
	rl := r.async(reloadMsg{call: newCall()})
	checking := r.next()
	rs := r.async(restartMsg{newCall()})
	r.checkInvariant()
	if err := reply(t, rl); err == nil || !strings.Contains(err.Error(), "restarting") {
		t.Errorf("the cancelled reload: %v, want it to name the restart", err)
	}
	if err := reply(t, rs); err != nil {
		t.Fatalf("restart: %v", err)
	}
	waitExit(t, checking)
	waitExit(t, old)
	fresh := r.next()
	fresh.verdict <- nil
	s := r.waitState(status.Running)
	if s.Generation != fresh.id || s.Reloading {
		t.Errorf("after: gen %d reloading %v, want gen %d", s.Generation, s.Reloading, fresh.id)
	}
	r.waitFor("one live generation", func(status.AppSnapshot) bool { return len(r.env.live()) == 1 })
	r.checkInvariant()
	r.noSpawn(10 * time.Millisecond)
}

// TestOwnerRestartAfterCommit: a restart that arrives once the reload
// committed (the old generation still draining) waits for the drain, then
// restarts the reload's generation.
func TestOwnerRestartAfterCommit(t *testing.T) {
	r := startRig(t, testApp())
	r.env.stubborn = true
	old := r.running()
	r.env.stubborn = false
	rl := r.async(reloadMsg{call: newCall()})
	g := r.next()
	g.verdict <- nil
	r.waitFor("commit", func(s status.AppSnapshot) bool { return s.Generation == g.id })
	rs := r.async(restartMsg{newCall()})
	r.waitFor("restart waiting", func(s status.AppSnapshot) bool { return strings.Contains(s.Message, "restart waits") })
	r.checkInvariant()
	old.crash(0) // the drain ends
	if err := reply(t, rl); err != nil {
		t.Errorf("reload: %v", err)
	}
	if err := reply(t, rs); err != nil {
		t.Fatalf("restart: %v", err)
	}
	waitExit(t, g)
	fresh := r.next()
	fresh.verdict <- nil
	r.waitFor("the restarted generation", func(s status.AppSnapshot) bool { return s.Generation == fresh.id && s.State == status.Running })
	r.checkInvariant()
}

// TestOwnerStopDuringReload: a stop cancels the reload and returns once
// neither generation runs.
func TestOwnerStopDuringReload(t *testing.T) {
	r := startRig(t, testApp())
	old := r.running()
	rl := r.async(reloadMsg{call: newCall()})
	checking := r.next()
	if err := r.do(stopMsg{call: newCall()}); err != nil {
		t.Fatal(err)
	}
	if !old.Exited() || !checking.Exited() {
		t.Errorf("stop returned with old exited %v, checking exited %v", old.Exited(), checking.Exited())
	}
	if err := reply(t, rl); err == nil {
		t.Error("the stopped reload reported success")
	}
	if s := r.snap(); s.State != status.Stopped {
		t.Errorf("state %s", s.State)
	}
	r.noSpawn(10 * time.Millisecond)
}

func TestOwnerRestart(t *testing.T) {
	r := startRig(t, testApp())
	old := r.running()
	if err := r.do(restartMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	if !old.Exited() || !old.signalled() {
		t.Errorf("restart returned before %s was stopped", old)
	}
	g := r.next()
	g.verdict <- nil
	r.waitState(status.Running)
	r.checkInvariant()
	r.env.mu.Lock()
	defer r.env.mu.Unlock()
	if want := []string{"1 of 1"}; !slices.Equal(r.env.detached, want) {
		t.Errorf("detached processes ended %q, want %q: generation 1's, before generation 2 was spawned", r.env.detached, want)
	}
}

// TestOwnerStopWaitsForRetired: a stop right after a restart returns only
// once the restart's retired generation has exited too.
func TestOwnerStopWaitsForRetired(t *testing.T) {
	r := startRig(t, testApp())
	r.env.stubborn = true
	old := r.running()
	r.env.stubborn = false
	restart := r.async(restartMsg{newCall()})
	r.next()
	r.waitFor("old retired", func(s status.AppSnapshot) bool { return s.Generation != old.id })
	stop := r.async(stopMsg{call: newCall()})
	r.waitState(status.Stopping)
	select {
	case err := <-stop:
		t.Fatalf("stop returned (%v) while the retired generation runs", err)
	case <-time.After(10 * time.Millisecond):
	}
	old.crash(0)
	if err := reply(t, stop); err != nil {
		t.Fatal(err)
	}
	if err := reply(t, restart); err != nil {
		t.Fatal(err)
	}
	if s := r.snap(); s.State != status.Stopped {
		t.Errorf("state %s", s.State)
	}
}

// TestOwnerUSR2Rollback: a usr2 reload whose new master fails its check
// after the old one drained starts the previous release again and commits
// it over its own first commit; the failed master is stopped.
func TestOwnerUSR2Rollback(t *testing.T) {
	cfg := testApp()
	cfg.Kind, cfg.Reload.Strategy = config.KindGunicorn, strategy.USR2
	r := startRig(t, cfg)
	old := r.running()
	done := r.async(reloadMsg{call: newCall()})
	g := r.next()
	waitExit(t, old)
	g.verdict <- errors.New("status 500")
	back := r.next()
	back.verdict <- nil
	err := reply(t, done)
	if err == nil || !strings.Contains(err.Error(), "rolled back") {
		t.Fatalf("reload: %v, want rolled back", err)
	}
	waitExit(t, g)
	s := r.snap()
	if s.Generation != back.id || s.State != status.Running || s.LastReload.Result != "rolled_back" {
		t.Errorf("after: gen %d %s last %+v, want gen %d running rolled_back", s.Generation, s.State, s.LastReload, back.id)
	}
	r.checkInvariant()
}

// TestOwnerSocketUse: which listening sockets each transition's generation
// gets, and when it is made to serve. A start, a restart and a restart
// after a crash share the serving sockets and serve at once (a Unix
// listener's queue carries over); a reload's generation gets its own and
// serves only at its commit, after which the old one is quiesced (its own
// queue emptied) before it is signalled. A rolled-back one never serves.
func TestOwnerSocketUse(t *testing.T) {
	r := startRig(t, testApp())
	g1 := r.running()
	expectSteps(t, r, "start", g1, useServing, "serve 1")

	done := r.async(reloadMsg{call: newCall()})
	g2 := r.next()
	if got := r.env.takeSteps(); len(got) != 0 {
		t.Errorf("reload before its gate: %v, want no serve", got)
	}
	g2.verdict <- nil
	if err := reply(t, done); err != nil {
		t.Fatalf("reload: %v", err)
	}
	expectSteps(t, r, "reload", g2, useOwn, "serve 2", "quiesce 1 signalled=false")

	done = r.async(reloadMsg{call: newCall()})
	g3 := r.next()
	g3.verdict <- errors.New("status 500")
	if err := reply(t, done); err == nil {
		t.Fatal("failed reload: no error")
	}
	waitExit(t, g3)
	expectSteps(t, r, "rolled back reload", g3, useOwn)

	if err := r.do(restartMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	g4 := r.next()
	g4.verdict <- nil
	r.waitState(status.Running)
	expectSteps(t, r, "restart", g4, useServing, "serve 4")

	g4.crash(1)
	g5 := r.next()
	expectSteps(t, r, "restart after a crash", g5, useServing, "serve 5")
}

// expectSteps checks the sockets g was spawned on and the serve and
// quiesce calls since the previous check.
func expectSteps(t *testing.T, r *ownerRig, what string, g *fakeGen, use socketUse, steps ...string) {
	t.Helper()
	if g.use != use {
		t.Errorf("%s: generation %d spawned on %s sockets, want %s", what, g.id, g.use, use)
	}
	r.snap() // everything before was handled
	if got := r.env.takeSteps(); !slices.Equal(got, steps) {
		t.Errorf("%s: steps %q, want %q", what, got, steps)
	}
}
