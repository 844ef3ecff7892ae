package supervise

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
	"github.com/gunisup/supervisor/upgrade"
)

// keepApp is testApp with swap reloads that keep the previous generation
// for keep.
func keepApp(keep time.Duration) *config.App {
	cfg := testApp()
	cfg.Reload.Strategy = strategy.Swap
	cfg.Reload.KeepPrevious = keep
	return cfg
}

// keepRig runs an owner of keepApp(keep) whose one listener has steering mode.
func keepRig(t *testing.T, keep time.Duration, mode steer.Mode) *ownerRig {
	t.Helper()
	r := startRig(t, keepApp(keep))
	if mode != "" {
		r.env.steered = []status.ListenerSnapshot{{Address: "tcp://127.0.0.1:8000", Steering: string(mode)}}
	}
	return r
}

// swapTo reloads the running app and passes the new generation's gate.
func (r *ownerRig) swapTo() *fakeGen {
	r.t.Helper()
	done := r.async(reloadMsg{call: newCall()})
	g := r.next()
	g.verdict <- nil
	if err := reply(r.t, done); err != nil {
		r.t.Fatalf("reload: %v", err)
	}
	return g
}

// rollback asks the owner to steer back to its kept generation.
func (r *ownerRig) rollback() (RollbackDone, error) {
	r.t.Helper()
	var out RollbackDone
	err := r.do(rollbackMsg{call: newCall(), asked: time.Now(), out: &out})
	return out, err
}

// TestOwnerKeepPreviousRollback: with keep_previous, a swap leaves the old
// generation running, unsteered and accounted for; a rollback steers back
// to it in one serve, makes it the tracked generation and drains the
// newer one; a second rollback finds nothing kept.
func TestOwnerKeepPreviousRollback(t *testing.T) {
	for _, mode := range []steer.Mode{steer.ModeBPF, steer.ModeRename} {
		t.Run(string(mode), func(t *testing.T) {
			r := keepRig(t, time.Hour, mode)
			g1 := r.running()
			r.env.takeSteps()
			g2 := r.swapTo()
			s := r.snap()
			if g1.Exited() || g1.signalled() {
				t.Fatalf("the previous generation was stopped: exited %v signalled %v", g1.Exited(), g1.signalled())
			}
			if s.Generation != g2.id || s.Kept == nil || s.Kept.Generation != g1.id || time.Until(s.Kept.Until) < 59*time.Minute {
				t.Fatalf("after the swap: gen %d kept %+v, want gen %d kept %d for an hour", s.Generation, s.Kept, g2.id, g1.id)
			}
			if got := r.env.takeSteps(); !slices.Equal(got, []string{"serve 2"}) {
				t.Errorf("swap steps %q, want [serve 2] (the kept one is not drained)", got)
			}
			r.checkInvariant()

			done, err := r.rollback()
			if err != nil {
				t.Fatalf("rollback: %v", err)
			}
			waitExit(t, g2)
			s = r.snap()
			if g1.Exited() || s.Generation != g1.id || s.State != status.Running || s.Kept != nil || !s.Healthy {
				t.Errorf("after the rollback: g1 exited %v, gen %d, %s, healthy %v, kept %+v", g1.Exited(), s.Generation, s.State, s.Healthy, s.Kept)
			}
			if done.To != g1.String() || done.Drained != g2.String() || done.Flip <= 0 {
				t.Errorf("rollback result %+v", done)
			}
			if got := r.env.takeSteps(); !slices.Equal(got, []string{"serve 1", "quiesce 2 signalled=false"}) {
				t.Errorf("rollback steps %q, want serve 1 then the newer one drained", got)
			}
			r.checkInvariant()
			if _, err := r.rollback(); !errors.Is(err, ErrNothingKept) {
				t.Errorf("second rollback: %v, want ErrNothingKept", err)
			}
		})
	}
}

// TestOwnerKeptWindowEnds: once keep_previous has passed, the kept
// generation is drained and stopped, and a rollback finds nothing kept.
func TestOwnerKeptWindowEnds(t *testing.T) {
	r := keepRig(t, 50*time.Millisecond, steer.ModeBPF)
	g1 := r.running()
	g2 := r.swapTo()
	waitExit(t, g1)
	s := r.waitFor("kept generation forgotten", func(s status.AppSnapshot) bool { return s.Kept == nil })
	if s.Generation != g2.id || s.State != status.Running {
		t.Errorf("after the window: gen %d %s, want %d running", s.Generation, s.State, g2.id)
	}
	if _, err := r.rollback(); !errors.Is(err, ErrNothingKept) {
		t.Errorf("rollback after the window: %v, want ErrNothingKept", err)
	}
	r.checkInvariant()
}

// TestOwnerKeepRefused: nothing is kept without steered listeners (a kept
// generation would accept new connections on a shared socket) or without
// keep_previous; the old generation is drained as usual.
func TestOwnerKeepRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		keep time.Duration
		mode steer.Mode
	}{
		{"shared", time.Hour, steer.ModeShared},
		{"no listener", time.Hour, ""},
		{"no keep_previous", 0, steer.ModeBPF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := keepRig(t, tc.keep, tc.mode)
			g1 := r.running()
			r.swapTo()
			waitExit(t, g1)
			if s := r.snap(); s.Kept != nil {
				t.Errorf("kept %+v, want none", s.Kept)
			}
			if _, err := r.rollback(); !errors.Is(err, ErrNothingKept) {
				t.Errorf("rollback: %v, want ErrNothingKept", err)
			}
		})
	}
}

// TestOwnerKeptLifecycle: a kept generation that exits is forgotten (no
// restart: it did not serve); a second swap keeps its own predecessor and
// drains the one kept before; freeze (self-upgrade) is refused while one
// is kept; a stop stops it too (the rig's cleanup checks).
func TestOwnerKeptLifecycle(t *testing.T) {
	r := keepRig(t, time.Hour, steer.ModeBPF)
	g1 := r.running()
	g2 := r.swapTo()
	g1.crash(1)
	r.waitFor("exited kept generation forgotten", func(s status.AppSnapshot) bool { return s.Kept == nil })
	r.noSpawn(20 * time.Millisecond)
	if s := r.snap(); s.Generation != g2.id || s.State != status.Running {
		t.Errorf("after the kept one's exit: gen %d %s", s.Generation, s.State)
	}

	g3 := r.swapTo()
	if s := r.snap(); s.Kept == nil || s.Kept.Generation != g2.id || s.Generation != g3.id {
		t.Fatalf("second swap: gen %d kept %+v, want %d kept %d", s.Generation, s.Kept, g3.id, g2.id)
	}
	g4 := r.swapTo()
	waitExit(t, g2)
	if s := r.snap(); s.Kept == nil || s.Kept.Generation != g3.id || s.Generation != g4.id {
		t.Errorf("third swap: gen %d kept %+v, want %d kept %d", s.Generation, s.Kept, g4.id, g3.id)
	}
	r.checkInvariant()
	var st upgrade.AppHandover
	if err := r.do(freezeMsg{call: newCall(), state: &st, thaw: make(chan struct{})}); !errors.Is(err, ErrBusy) {
		t.Errorf("freeze while a generation is kept: %v, want ErrBusy", err)
	}
}

// TestOwnerKeptHandoff: an owner replaced by an update hands its kept
// generation to its successor, which keeps it until the same time and
// can roll back to it.
func TestOwnerKeptHandoff(t *testing.T) {
	r := keepRig(t, time.Hour, steer.ModeBPF)
	g1 := r.running()
	g2 := r.swapTo()
	until := r.snap().Kept.Until
	var st ownerState
	if err := r.do(handoffMsg{call: newCall(), out: &st}); err != nil {
		t.Fatalf("handoff: %v", err)
	}
	<-r.a.exited
	next := newOwner(r.env, r.env, keepApp(time.Hour))
	next.adopt(r.ctx, st)
	r.a = next // the rig's cleanup stops the successor
	go next.run(r.ctx)
	if s := r.snap(); s.Kept == nil || s.Kept.Generation != g1.id || !s.Kept.Until.Equal(until) || s.Generation != g2.id {
		t.Fatalf("successor: gen %d kept %+v, want %d kept %d until %v", s.Generation, s.Kept, g2.id, g1.id, until)
	}
	r.checkInvariant()
	if _, err := r.rollback(); err != nil {
		t.Fatalf("rollback through the successor: %v", err)
	}
	waitExit(t, g2)
	if s := r.snap(); s.Generation != g1.id || g1.Exited() {
		t.Errorf("after the rollback: gen %d, g1 exited %v", s.Generation, g1.Exited())
	}
}
