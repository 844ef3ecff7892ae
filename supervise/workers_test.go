package supervise

import (
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/proc"
)

// TestRecycleOneAtATime: two real processes standing in for workers, both
// over max_worker_rss. After rssSamples samples the larger one gets TERM,
// and only it; the other waits until the first has exited and the
// cooldown passed; a worker under the limit is never touched, and the
// counter counts each TERM.
func TestRecycleOneAtATime(t *testing.T) {
	app := testApp()
	app.Kind, app.MaxWorkerRSS = config.KindGunicorn, 100<<20
	a := newOwner(newFakeEnv(t), nil, app)
	w := newWorkerCtl(a)
	w.master = os.Getpid()
	procs := map[int]*exec.Cmd{}
	for range 3 {
		c := exec.Command("sleep", "60")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { _ = c.Wait(); close(exited) }()
		t.Cleanup(func() { _ = c.Process.Kill(); <-exited })
		procs[c.Process.Pid] = c
	}
	var pids []int
	for pid := range procs {
		pids = append(pids, pid)
	}
	big, other, small := pids[0], pids[1], pids[2]
	rss := map[int]int{big: 300 << 20, other: 200 << 20, small: 50 << 20}
	now := time.Unix(1000, 0)
	for i := range rssSamples {
		if w.recycling != 0 {
			t.Fatalf("TERM after %d samples over the limit; want %d", i, rssSamples)
		}
		now = now.Add(workerSampleEvery)
		w.recycle(pids, rss, now)
	}
	if w.recycling != big || w.stats.recycledRSS.Load() != 1 {
		t.Fatalf("recycling %d (counter %d); want the largest, %d, once", w.recycling, w.stats.recycledRSS.Load(), big)
	}
	testenv.WaitFor(t, 10*time.Second, "the TERMed process to exit", func() bool { return !proc.Alive(big) })
	// While the first is still listed as a live worker, nothing else goes.
	w.recycle(pids, rss, now.Add(workerSampleEvery))
	if w.stats.recycledRSS.Load() != 1 {
		t.Fatal("a second TERM while the first recycled worker was still listed")
	}
	left := []int{other, small}
	delete(rss, big)
	now = now.Add(2 * workerSampleEvery)
	w.recycle(left, rss, now) // the first is gone: the cooldown starts
	if w.stats.recycledRSS.Load() != 1 {
		t.Fatal("a second TERM before the cooldown")
	}
	w.recycle(left, rss, now.Add(recycleCooldown))
	if w.recycling != other || w.stats.recycledRSS.Load() != 2 {
		t.Fatalf("recycling %d (counter %d); want %d after the cooldown", w.recycling, w.stats.recycledRSS.Load(), other)
	}
	if !proc.Alive(small) {
		t.Fatal("the worker under the limit was signalled")
	}
}

// TestScaleSignalsTheMaster: the scaler's steps reach the tracked
// generation's master through the owner as TTIN and TTOU, one signal per
// sample until the master is believed at the target; a sample of another
// master (the generation changed) forgets what was believed.
func TestScaleSignalsTheMaster(t *testing.T) {
	r, g, s, w := scaleRig(t)
	now := time.Unix(1000, 0)
	step := func(busy float64) { // the master obeys: its live workers are what it was told
		now = now.Add(workerSampleEvery)
		w.scaleStep(r.ctx, &s, max(w.belief, 2), busy, now)
	}
	signals := g.sent
	for range scaleUpSamples {
		step(0.95)
	}
	if got := signals(); len(got) != 1 || got[0] != syscall.SIGTTIN || w.belief != 3 || w.stats.target.Load() != 3 {
		t.Fatalf("after %d saturated samples: signals %v, belief %d, target %d; want one TTIN, 3, 3", scaleUpSamples, got, w.belief, w.stats.target.Load())
	}
	step(0.95) // cooling: no step, and the master is believed at the target
	if got := signals(); len(got) != 1 {
		t.Fatalf("signals %v during the cooldown; want one", got)
	}
	for range int(scaleDownIdle/workerSampleEvery) + 1 {
		step(0)
	}
	if got := signals(); len(got) != 2 || got[1] != syscall.SIGTTOU || w.belief != 2 {
		t.Fatalf("after %v idle: signals %v, belief %d; want TTIN then TTOU, 2", scaleDownIdle, got, w.belief)
	}
	other := s
	other.MasterPID = s.MasterPID + 1
	w.scale.target = 4
	w.master = other.MasterPID
	w.scaleStep(r.ctx, &other, 2, 0, now.Add(workerSampleEvery))
	if w.master != 0 || w.belief != 0 {
		t.Fatalf("after signalling master %d for a sample of %d: master %d belief %d; want both forgotten", s.MasterPID, other.MasterPID, w.master, w.belief)
	}
}

// scaleRig runs an owner on a fakeEnv with a running generation that
// ignores signals, and a worker controller of 2..4 for it (not started:
// the test feeds it samples).
func scaleRig(t *testing.T) (*ownerRig, *fakeGen, AppSnapshot, *workerCtl) {
	r := startRig(t, testApp())
	if err := r.do(startMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	g := r.next()
	g.mu.Lock()
	g.stubborn = true // TTIN and TTOU do not end a master
	g.mu.Unlock()
	g.verdict <- nil
	s := r.waitState(StateRunning)
	app := *testApp()
	app.Kind, app.Workers, app.WorkersMax = config.KindGunicorn, 2, 4
	w := &workerCtl{a: r.a, app: &app, stats: &workerStats{}, scale: newScaler(2, 4, 2)}
	w.forget()
	w.master = s.MasterPID
	return r, g, s, w
}

// sent returns the signals g received.
func (g *fakeGen) sent() []syscall.Signal {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]syscall.Signal(nil), g.signals...)
}

// TestScaleAdoptsAndCorrects: a controller with nothing published before
// it takes the first master's live count as its target (no signal); a
// master whose live count stays off what it was told for beliefDrift is
// believed at its live count, and signalled back toward the target.
func TestScaleAdoptsAndCorrects(t *testing.T) {
	r, g, s, w := scaleRig(t)
	w.adopt = true
	now := time.Unix(1000, 0)
	w.scaleStep(r.ctx, &s, 3, 0.7, now) // busy: neither idle nor saturated
	if w.scale.target != 3 || w.belief != 3 || len(g.sent()) != 0 {
		t.Fatalf("first sample of 3 live workers: target %d belief %d signals %v; want 3, 3, none", w.scale.target, w.belief, g.sent())
	}
	for at := workerSampleEvery; at <= beliefDrift+workerSampleEvery; at += workerSampleEvery {
		w.scaleStep(r.ctx, &s, 2, 0.7, now.Add(at)) // one worker lost, and never replaced
	}
	if got := g.sent(); len(got) != 1 || got[0] != syscall.SIGTTIN || w.belief != 3 {
		t.Fatalf("after %v at 2 live workers told 3: signals %v belief %d; want one TTIN, 3", beliefDrift, got, w.belief)
	}
}
