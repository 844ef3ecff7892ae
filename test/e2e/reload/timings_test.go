//go:build soak

// The swap timings run by hand, not with the suite (make soak): they
// measure; what they assert (every swap under load succeeds, no request
// fails with BPF steering) TestReloadUnderLoad/swap asserts in make test.

package reload

import (
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/listen/steer"
)

// TestSwapTimings logs, for twenty good swaps under unthrottled load (16
// connections), the time from `supctl reload` to the new generation's spawn,
// to the switch ("is healthy; switching") and to the end (old generation
// drained), with medians and maxima; it asserts only that no request failed
// (with BPF steering) and that every reload succeeded.
func TestSwapTimings(t *testing.T) {
	w := startWeb(t, webOpts{Releases: versions(21), HealthyAfter: 3})
	mode := w.App("web").Listeners[0].Steering
	load := e2e.StartLoad("tcp", w.Addr, "/", 16)
	defer load.Stop()
	testenv.WaitFor(t, 20*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
	var spawn, switched, total, gate []time.Duration
	for i := 1; i <= 20; i++ {
		testenv.PointCurrent(t, w.Current, w.Dirs[i])
		start := time.Now()
		rl := w.CtlAsync("reload", "web")
		rl.WaitOutput(t, 60*time.Second, "waiting for readiness")
		sp := time.Since(start)
		rl.WaitOutput(t, 60*time.Second, "switching")
		sw := time.Since(start)
		r := rl.Wait(t, 90*time.Second)
		if r.Code != 0 {
			t.Fatalf("reload %d: exit %d:\n%s", i, r.Code, r.Out)
		}
		spawn, switched, total = append(spawn, sp), append(switched, sw), append(total, time.Since(start))
		gate = append(gate, sw-sp)
	}
	res := load.Stop()
	for _, row := range []struct {
		name string
		ds   []time.Duration
	}{{"command to spawn", spawn}, {"spawn to switch (boot + gate)", gate}, {"command to switch", switched}, {"command to done (drained)", total}} {
		med, worst := stats(row.ds)
		t.Logf("%s (%s): 20 swaps: %s median %v max %v", mode, "healthy_after=3", row.name, med.Round(time.Millisecond), worst.Round(time.Millisecond))
	}
	t.Logf("load: requests=%d ok=%d non2xx=%d refused=%d reset=%d timeout=%d other=%d", res.Requests, res.OK, res.Non2xx, res.Refused, res.Reset, res.Timeout, res.OtherErr)
	if mode == string(steer.ModeBPF) && res.OK != res.Requests {
		t.Errorf("%d of %d requests failed", res.Requests-res.OK, res.Requests)
	}
}
