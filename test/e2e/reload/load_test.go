package reload

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// reloadsUnderLoad is how many reloads TestReloadUnderLoad makes per
// strategy with E2E_FULL=1 (reloadsShort without, see e2e.Runs): odd ones
// by deploy, even ones by reload, so that even the short run replaces a
// deployed generation by reload and a reloaded one by deploy. The long run
// is the soak (make soak).
const (
	reloadsUnderLoad = 10
	reloadsShort     = 3
)

// TestReloadUnderLoad runs reloadsUnderLoad consecutive reloads, each to a
// new version, under 16 connections of load, for each strategy (with the
// strategy also configured, so usr2 generations are started to follow
// `current`). Odd
// reloads use `supctl deploy`, even ones PointCurrent + `supctl reload`.
// After each reload returns, 20 requests on fresh connections must all get
// the new version, and exactly one generation must be left. No request may
// fail.
func TestReloadUnderLoad(t *testing.T) {
	for _, strategy := range []string{"swap", "usr2"} {
		t.Run(strategy, func(t *testing.T) {
			reloadUnderLoad(t, strategy, strategy, e2e.Runs(reloadsUnderLoad, reloadsShort))
		})
	}
}

// TestReloadStrategyOverride reloads with the strategy other than the
// configured one (`--strategy`). The configured strategy decides how every
// generation is started: for usr2 with PWD = the `current` link (Gunicorn's
// re-exec follows it), for swap with PWD = the resolved release. So swap
// reloads of a usr2 app work, but a USR2 re-exec of a swap app's generation
// would run the old release again while reporting "ok": the supervisor must
// replace such a generation by swap and say so.
func TestReloadStrategyOverride(t *testing.T) {
	t.Run("usr2-config-swap-reload", func(t *testing.T) {
		reloadUnderLoad(t, "usr2", "swap", 2)
	})
	t.Run("swap-config-usr2-reload", func(t *testing.T) {
		w := reloadUnderLoad(t, "swap", "usr2", 2)
		// A usr2 reload that keeps the release (code changed in place) is a
		// real USR2 re-exec.
		r := w.Ctl("reload", "web", "--strategy", "usr2")
		t.Logf("in-place usr2 reload of a swap-configured app: exit %d in %v", r.Code, r.Took.Round(time.Millisecond))
		if r.Code != 0 || strings.Contains(r.Out, "using swap") || !strings.Contains(r.Out, "sending USR2") {
			t.Errorf("in-place usr2 reload: exit %d, want 0 by USR2:\n%s", r.Code, r.Out)
		}
	})
}

// reloadUnderLoad starts web with strategy configured and runs n reloads
// with strategy under load, checking each; it returns the supervisor.
func reloadUnderLoad(t *testing.T, configured, strategy string, n int) *web {
	w := startWeb(t, webOpts{Strategy: configured, Releases: versions(n + 1)})
	load := e2e.StartLoad("tcp", w.Addr, "/", 16)
	defer load.Stop()
	testenv.WaitFor(t, 20*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })

	var took []time.Duration
	staleTotal := 0
	for i := 1; i <= n; i++ {
		want := "version=v" + strconv.Itoa(i) + "\n"
		before := load.Snapshot()
		var r e2e.CtlResult
		how := "deploy"
		if i%2 == 1 {
			r = w.Ctl("deploy", "web", w.Dirs[i], "--strategy", strategy)
		} else {
			how = "reload"
			testenv.PointCurrent(t, w.Current, w.Dirs[i])
			r = w.Ctl("reload", "web", "--strategy", strategy)
		}
		// Check the served version before anything else: a stale answer
		// right after the return is what this test is about.
		stale := probe(w.Addr, want, 20)
		tr, bad := w.oneGeneration(2)
		after := load.Snapshot()
		if r.Code != 0 {
			t.Fatalf("%s %d (%s) exited %d:\n%s", how, i, strategy, r.Code, r.Out)
		}
		took = append(took, r.Took)
		st := w.App("web")
		t.Logf("%s %2d -> v%d: %v; during it: %d requests, %d failed, max latency %v; gen %d master %d release %s; fresh probes not new: %d",
			how, i, i, r.Took.Round(time.Millisecond), after.Requests-before.Requests, after.Failed()-before.Failed(),
			maxLatency(after, len(before.Latencies)).Round(time.Millisecond), st.Generation, st.MasterPID, st.Release, len(stale))
		if len(stale) > 0 {
			staleTotal += len(stale)
			t.Errorf("%s %d: %d of 20 fresh requests after the return did not get %q: %v\nsupctl output:\n%s", how, i, len(stale), want, stale, r.Out)
		}
		if bad != "" {
			t.Errorf("%s %d: %s", how, i, bad)
		} else if tr.Masters[0] != st.MasterPID {
			t.Errorf("%s %d: the only master is %d, status says %d", how, i, tr.Masters[0], st.MasterPID)
		}
		if st.State != control.StateRunning || st.Release != w.Dirs[i] || st.LastReload == nil || st.LastReload.Result != "ok" || st.LastReload.Strategy != strategy {
			t.Errorf("%s %d: status state=%s release=%s last reload=%+v; want running, %s, ok %s", how, i, st.State, st.Release, st.LastReload, w.Dirs[i], strategy)
		}
		if !strings.Contains(r.Out, "ok in") {
			t.Errorf("%s %d: output does not say ok:\n%s", how, i, r.Out)
		}
		// A generation of a swap app cannot follow the link through a USR2
		// re-exec: the supervisor falls back to swap and says so.
		if fallback := configured == "swap" && strategy == "usr2"; fallback != strings.Contains(r.Out, "using swap") {
			t.Errorf("%s %d: fallback to swap expected: %v; output:\n%s", how, i, fallback, r.Out)
		}
	}
	res := load.Stop()
	med, mx := stats(took)
	t.Logf("%s (configured %s): %d reloads, supctl duration median %v max %v; load %s; p99.9 %v max %v; stale fresh answers %d",
		strategy, configured, n, med.Round(time.Millisecond), mx.Round(time.Millisecond), res, res.Percentile(99.9).Round(time.Millisecond),
		maxLatency(res, 0).Round(time.Millisecond), staleTotal)
	if res.Failed() != 0 {
		t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
	}
	for body := range res.Bodies {
		v, ok := strings.CutPrefix(body, "version=v")
		if k, err := strconv.Atoi(v); !ok || err != nil || k < 0 || k > n {
			t.Errorf("unexpected answer %q", body)
		}
	}
	return w
}
