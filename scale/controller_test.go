package scale

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sync"
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
	app := &config.App{Name: "web", Kind: config.KindGunicorn, MaxWorkerRSS: 100 << 20}
	w := newController(app, &Stats{}, &fakeOwner{}, discard)
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

// TestScaleSignalsTheMaster: the scaler's steps reach the serving master
// through the owner as TTIN and TTOU, one signal per sample until the
// master is believed at the target; a signal that reached another master
// (the generation changed under the sample) forgets what was believed.
func TestScaleSignalsTheMaster(t *testing.T) {
	g, w := scaleRig()
	ctx := context.Background()
	now := time.Unix(1000, 0)
	step := func(busy float64) { // the master obeys: its live workers are what it was told
		now = now.Add(workerSampleEvery)
		w.scaleStep(ctx, nil, max(w.belief, 2), busy, now)
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
	other := g.master + 1
	w.scale.target = 4
	w.master = other
	w.scaleStep(ctx, nil, 2, 0, now.Add(workerSampleEvery))
	if w.master != 0 || w.belief != 0 {
		t.Fatalf("after signalling master %d for a sample of %d: master %d belief %d; want both forgotten", g.master, other, w.master, w.belief)
	}
}

// scaleRig returns a fake owner whose master ignores signals (they are
// recorded) and a worker controller of 2..4 for it (not started: the test
// feeds it samples).
func scaleRig() (*fakeOwner, *controller) {
	o := &fakeOwner{master: 4242}
	app := &config.App{Name: "web", Kind: config.KindGunicorn, Workers: 2, WorkersMax: 4}
	w := &controller{owner: o, log: discard, app: app, stats: &Stats{}, scale: newScaler(2, 4, 2)}
	w.forget()
	w.master = o.master
	return o, w
}

// fakeOwner stands in for an app's owner: its master is master, and the
// signals sent to it are recorded.
type fakeOwner struct {
	mu      sync.Mutex
	master  int
	signals []syscall.Signal
}

func (o *fakeOwner) Serving() (int, []Listener) { return o.master, nil }

func (o *fakeOwner) SignalMaster(_ context.Context, sig syscall.Signal) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.signals = append(o.signals, sig)
	return o.master, nil
}

// sent returns the signals o received.
func (o *fakeOwner) sent() []syscall.Signal {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]syscall.Signal(nil), o.signals...)
}

// discard is a logger that writes nowhere.
var discard = slog.New(slog.NewTextHandler(io.Discard, nil))

// TestScaleAdoptsAndCorrects: a controller with nothing published before
// it takes the first master's live count as its target (no signal); a
// master whose live count stays off what it was told for beliefDrift is
// believed at its live count, and signalled back toward the target.
func TestScaleAdoptsAndCorrects(t *testing.T) {
	g, w := scaleRig()
	ctx := context.Background()
	w.adopt = true
	now := time.Unix(1000, 0)
	w.scaleStep(ctx, nil, 3, 0.7, now) // busy: neither idle nor saturated
	if w.scale.target != 3 || w.belief != 3 || len(g.sent()) != 0 {
		t.Fatalf("first sample of 3 live workers: target %d belief %d signals %v; want 3, 3, none", w.scale.target, w.belief, g.sent())
	}
	for at := workerSampleEvery; at <= beliefDrift+workerSampleEvery; at += workerSampleEvery {
		w.scaleStep(ctx, nil, 2, 0.7, now.Add(at)) // one worker lost, and never replaced
	}
	if got := g.sent(); len(got) != 1 || got[0] != syscall.SIGTTIN || w.belief != 3 {
		t.Fatalf("after %v at 2 live workers told 3: signals %v belief %d; want one TTIN, 3", beliefDrift, got, w.belief)
	}
}
