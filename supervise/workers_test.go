package supervise

import (
	"os"
	"os/exec"
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
