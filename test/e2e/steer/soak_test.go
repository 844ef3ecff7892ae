//go:build soak

package steer

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
)

// TestSteerAcceptance is the acceptance run of the traffic-gate issue, once
// through nginx to the app's Unix socket and once on TCP directly: under
// `hey -c 16` for 32 s, three releases answering 500 everywhere are each
// rolled back, then a good one swaps (0 non-2xx and 0 socket errors
// asserted); then twenty good swaps under unthrottled load, timed from the
// command to the switch beside the app's boot time (from the command until
// its last worker imported the release). Figures are logged on lines
// starting "RESULT" (bench/steer.sh prints them).
func TestSteerAcceptance(t *testing.T) {
	t.Run("nginx-unix", func(t *testing.T) { acceptance(t, "unix") })
	t.Run("tcp", func(t *testing.T) { acceptance(t, "tcp") })
}

func acceptance(t *testing.T, listen string) {
	releases := []testenv.Release{{Version: "v0"},
		{Version: "bad1", Variant: testenv.All500}, {Version: "bad2", Variant: testenv.All500}, {Version: "bad3", Variant: testenv.All500},
		{Version: "v4"}}
	for i := 5; i < 25; i++ {
		releases = append(releases, testenv.Release{Version: "v" + strconv.Itoa(i)})
	}
	a := startApp(t, listen, releases)
	addr, what := a.Addr, "tcp"
	if listen == "unix" {
		addr, what = startNginx(t, a.Sock).Addr, "nginx->unix"
	}
	mode := a.App("web").Listeners[0].Steering

	const loadFor = 32 * time.Second
	load := startHey(t, addr, loadFor)
	var rollbacks []time.Duration
	for i := 1; i <= 4; i++ {
		start, r := a.reload(t, i)
		bad := releases[i].Variant == testenv.All500
		if bad != (r.Code != 0) || (bad && !strings.Contains(r.Out, "rolled back")) {
			t.Fatalf("reload to %s: exit %d, want rolled back only for a failing release:\n%s", releases[i].Version, r.Code, r.Out)
		}
		if bad {
			rollbacks = append(rollbacks, logRollback(t, a, i, start))
		}
	}
	h := <-load
	checkHey(t, what+" 3 bad + 1 good", h, 1000)
	t.Logf("RESULT %s (%s) 3 bad releases then a good one, hey -c 16 for %v: requests=%d non2xx=%d errors=%d; rejected after first worker boot: %v",
		what, mode, loadFor, h.Requests, non2xx(h.Status), sum(h.Errors), rounded(rollbacks))

	swapLoad := startHey(t, addr, 45*time.Second)
	began := time.Now()
	var boots, switches, totals []time.Duration
	switched := regexp.MustCompile(`is healthy; switching`)
	for i := 5; i < 25; i++ {
		start, r := a.reload(t, i)
		if r.Code != 0 {
			t.Fatalf("swap to %s: exit %d:\n%s", releases[i].Version, r.Code, r.Out)
		}
		totals = append(totals, r.Took)
		if at := a.phaseTime(switched, start); !at.IsZero() {
			switches = append(switches, at.Sub(start))
		}
		if bt := a.bootTimes(i); len(bt) > 0 {
			boots = append(boots, bt[len(bt)-1].Sub(start))
		}
	}
	if d := time.Since(began); d > 45*time.Second {
		t.Logf("the swaps took %v, longer than the load (45 s): the last ones ran without it", d.Round(time.Millisecond))
	}
	h = <-swapLoad
	checkHey(t, what+" 20 good swaps", h, 1000)
	t.Logf("RESULT %s (%s) 20 good swaps, hey -c 16 unthrottled: requests=%d non2xx=%d errors=%d", what, mode, h.Requests, non2xx(h.Status), sum(h.Errors))
	t.Logf("RESULT %s (%s) command to switch: median %v max %v; boot (command to last worker imported): median %v max %v; supctl reload total (old drained): median %v max %v",
		what, mode, median(switches), maxOf(switches), median(boots), maxOf(boots), median(totals), maxOf(totals))
	a.checkCleanStop(t)
}

func non2xx(status map[int]int) int {
	n := 0
	for code, c := range status {
		if code/100 != 2 {
			n += c
		}
	}
	return n
}

func sum(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func rounded(d []time.Duration) string {
	var s []string
	for _, x := range d {
		s = append(s, x.Round(time.Millisecond).String())
	}
	return fmt.Sprintf("[%s]", strings.Join(s, " "))
}

func maxOf(d []time.Duration) time.Duration { return slices.Max(d).Round(time.Millisecond) }
