package supervise

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/status"
)

// brokenRig runs an owner set aside for its configuration that tracks an
// adopted orphan generation, as Manager.setAside leaves it (Failed).
func brokenRig(t *testing.T) (*ownerRig, *fakeGen) {
	t.Helper()
	env := newFakeEnv(t)
	og, err := env.newGen(gen.OrphanID, useServing)
	if err != nil {
		t.Fatal(err)
	}
	orphan := <-env.spawned
	ctx, cancel := context.WithCancel(context.Background())
	a := newOwner(env, env, testApp())
	a.gen, a.state, a.attempted = og, status.Failed, true
	a.broken = "config error: f.toml:3: app.web.command: gone"
	r := &ownerRig{t: t, env: env, a: a, ctx: ctx}
	go a.run(ctx)
	t.Cleanup(func() {
		for _, g := range env.live() {
			g.yield()
		}
		if err := a.send(ctx, stopMsg{call: newCall()}); err != nil {
			t.Errorf("final stop: %v", err)
		}
		cancel()
		<-a.exited
	})
	return r, orphan
}

// TestOwnerBrokenKeepsOrphan: an owner set aside for its configuration
// spawns nothing: a start fails naming the error (the orphan serves on,
// untouched), a restart is refused, and when the orphan exits the app
// stays failed without a restart scheduled.
func TestOwnerBrokenKeepsOrphan(t *testing.T) {
	r, orphan := brokenRig(t)
	if err := r.do(startMsg{newCall()}); err != nil {
		t.Fatalf("start: %v", err)
	}
	r.noSpawn(100 * time.Millisecond)
	if err := r.do(restartMsg{newCall()}); err == nil || !strings.Contains(err.Error(), "app.web.command") {
		t.Errorf("restart: %v, want the configuration error", err)
	}
	if s := r.snap(); s.State != status.Failed || s.Generation != gen.OrphanID || orphan.signalled() {
		t.Errorf("after start and restart: %s, generation %d, orphan signalled %v", s.State, s.Generation, orphan.signalled())
	}
	orphan.crash(1)
	s := r.waitFor("the orphan's exit", func(s status.AppSnapshot) bool { return s.MasterPID == 0 })
	if s.State != status.Failed || !s.NextRestart.IsZero() || !strings.Contains(s.Message, "not restarted") {
		t.Errorf("after the orphan's exit: %s, next restart %v, message %q", s.State, s.NextRestart, s.Message)
	}
	r.noSpawn(200 * time.Millisecond)
}

// TestOwnerBrokenStop: a stop ends the orphan of an owner set aside for
// its configuration.
func TestOwnerBrokenStop(t *testing.T) {
	r, orphan := brokenRig(t)
	done := r.async(stopMsg{call: newCall()})
	orphan.yield()
	if err := reply(t, done); err != nil {
		t.Fatalf("stop: %v", err)
	}
	waitExit(t, orphan)
	if s := r.snap(); s.State != status.Stopped {
		t.Errorf("after stop: %s", s.State)
	}
}
