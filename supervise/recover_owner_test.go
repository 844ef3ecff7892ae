package supervise

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
)

// recoveryRig runs an owner that tracks an adopted orphan generation
// (Starting, as Manager.adoptOrphans leaves it) and starts the recovery's
// swap reload, as Manager.recoverApp does. It returns the rig, the orphan
// and the reload's reply.
func recoveryRig(t *testing.T) (*ownerRig, *fakeGen, <-chan error) {
	t.Helper()
	env := newFakeEnv(t)
	og, err := env.newGen(gen.OrphanID, useServing)
	if err != nil {
		t.Fatal(err)
	}
	orphan := <-env.spawned
	ctx, cancel := context.WithCancel(context.Background())
	a := newOwner(env, env, testApp())
	a.gen, a.state, a.attempted = og, status.Starting, true
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
	s := strategy.Swap
	done := r.async(reloadMsg{call: newCall(), strategy: &s, dir: "/srv/gated", recovery: true})
	return r, orphan, done
}

// TestOwnerRecoveryCommit: the orphans serve (Starting) until the new
// generation passes the gate; the steering switches to it, and only then
// are the orphans drained.
func TestOwnerRecoveryCommit(t *testing.T) {
	r, orphan, done := recoveryRig(t)
	g := r.next()
	if s := r.snap(); s.State != status.Starting || s.Generation != gen.OrphanID || orphan.signalled() {
		t.Errorf("while the new generation is checked: %s, generation %d, orphans signalled %v", s.State, s.Generation, orphan.signalled())
	}
	g.verdict <- nil
	if err := reply(t, done); err != nil {
		t.Fatalf("recovery reload: %v", err)
	}
	waitExit(t, orphan)
	if steps := r.env.takeSteps(); len(steps) < 2 || steps[0] != "serve 1" || !strings.HasPrefix(steps[1], "quiesce 0") {
		t.Errorf("steps %v, want the switch to generation 1 before the orphans' quiesce", steps)
	}
	if s := r.snap(); s.State != status.Running || s.Generation != g.id {
		t.Errorf("after the recovery: %s, generation %d", s.State, s.Generation)
	}
	r.checkInvariant()
}

// TestOwnerRecoveryFailureKeepsOrphans: a new generation that fails the
// gate is stopped; the orphans, untouched, serve on (Running, healthy) and
// the message says so.
func TestOwnerRecoveryFailureKeepsOrphans(t *testing.T) {
	r, orphan, done := recoveryRig(t)
	g := r.next()
	g.verdict <- errors.New("status 500")
	if err := reply(t, done); err == nil {
		t.Fatal("recovery reload of a failing generation succeeded")
	}
	waitExit(t, g)
	s := r.snap()
	if orphan.Exited() || s.State != status.Running || !s.Healthy || s.Generation != gen.OrphanID || !strings.Contains(s.Message, "no new generation took over") {
		t.Errorf("after the failure: orphans exited %v, %s healthy %v, generation %d, message %q", orphan.Exited(), s.State, s.Healthy, s.Generation, s.Message)
	}
}
