package reload

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// brokenCases are the ways a release fails, with what `supctl reload` must
// say about each.
var brokenCases = []struct {
	variant testenv.Variant
	// timeout is the reload timeout by strategy: the import error must be
	// seen as an exit, not a timeout, even on a slow machine, and a usr2
	// rollback is followed by a good deploy that must boot within it.
	timeout map[string]string
	// cause, by strategy, are parts of the reason that must appear in
	// supctl's output.
	cause map[string][]string
	// tail must appear in the failed generation's output tail, if set.
	tail []string
}{
	// Gunicorn 20.1.0's master exits 3 ("Worker failed to boot"), or 1 when
	// a second worker's boot failure reaches it while it is already halting;
	// it closes its listeners first, so the gate may see refused probes
	// before the exit: the reason ends with the app's exception either way.
	{testenv.ImportError, map[string]string{"swap": "20s", "usr2": "20s"}, map[string][]string{"swap": {"RuntimeError: release v1 fails at import"}, "usr2": {"exited"}},
		[]string{"Traceback", "RuntimeError: release v1 fails at import (testenv ImportError)"}},
	{testenv.Health500, map[string]string{"swap": "15s", "usr2": "15s"}, map[string][]string{"swap": {"checks in a row", "status 500"}, "usr2": {"checks in a row", "status 500"}}, nil},
	{testenv.HangAtBoot, map[string]string{"swap": "5s", "usr2": "10s"}, map[string][]string{"swap": {"not ready in time"}, "usr2": {"0 of 2 workers booted the app within the reload timeout 10s"}}, nil},
}

// TestBrokenRelease reloads onto a broken release under load (reload
// timeout 10 s for the hanging boot, 5 s with swap, which no deploy
// follows; 15 s for the failing health check, 20 s for the import error,
// so that the good deploy that follows has time even on a busy machine): the reload must fail with exit 1 naming the cause, the old
// version must serve alone afterwards, no request may fail, and a following
// usr2 deploy of a good release must work. A Health500 release answers GET /
// with 200, and it may serve clients before it is rolled back (swap with a
// shared socket: its workers accept there before the health gate; usr2: it
// serves alone between the drain of the old master and the rollback): those
// answers are counted and logged, not failed. It is rolled back as soon as
// it fails unhealthy_after checks in a row, not at the timeout.
func TestBrokenRelease(t *testing.T) {
	for _, strategy := range []string{"swap", "usr2"} {
		t.Run(strategy, func(t *testing.T) {
			for _, c := range brokenCases {
				t.Run(c.variant.String(), func(t *testing.T) {
					w := startWeb(t, webOpts{Strategy: strategy, Timeout: c.timeout[strategy], Releases: []testenv.Release{
						{Version: "v0"}, {Version: "v1", Variant: c.variant}, {Version: "v2"},
					}})
					load := e2e.StartLoad("tcp", w.Addr, "/", 16)
					defer load.Stop()
					testenv.WaitFor(t, 20*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
					before := load.Snapshot()

					testenv.PointCurrent(t, w.Current, w.Dirs[1])
					r := w.Ctl("reload", "web")
					stale := probe(w.Addr, "version=v0\n", 20)
					tr, bad := w.oneGeneration(2)
					after := load.Snapshot()
					testenv.PointCurrent(t, w.Current, w.Dirs[0])
					st := w.App("web")
					t.Logf("%s %s: exit %d in %v; during it %d requests, %d failed, %d answered by the broken release, max latency %v; after: %s, release %s, last reload %+v\n%s",
						strategy, c.variant, r.Code, r.Took.Round(time.Millisecond), after.Requests-before.Requests, after.Failed()-before.Failed(),
						after.Bodies["version=v1"], maxLatency(after, len(before.Latencies)).Round(time.Millisecond), tr, st.Release, st.LastReload, r.Out)
					if r.Code != 1 {
						t.Errorf("reload onto a %s release: exit %d, want 1", c.variant, r.Code)
					}
					for _, s := range append(append([]string{}, c.cause[strategy]...), c.tail...) {
						if !strings.Contains(r.Out, s) {
							t.Errorf("reload output does not contain %q", s)
						}
					}
					if len(stale) != 0 {
						t.Errorf("after the failed reload %d of 20 fresh answers are not v0: %v", len(stale), stale)
					}
					if bad != "" {
						t.Error(bad)
					}
					if st.State != control.StateRunning || st.Release != w.Dirs[0] || st.LastReload == nil || st.LastReload.Result != "rolled_back" {
						t.Errorf("status after the failed reload: state=%s release=%s last=%+v; want running on %s, rolled_back", st.State, st.Release, st.LastReload, w.Dirs[0])
					}
					if strategy == "swap" && after.Bodies["version=v1"] != 0 && c.variant != testenv.Health500 {
						t.Errorf("the broken release answered %d requests", after.Bodies["version=v1"])
					}

					// The app recovers: a good release deploys. (Only checked
					// for usr2, where a rollback replaces the serving
					// generation; a failed swap leaves the old one untouched.)
					if strategy == "usr2" {
						r2 := w.Ctl("deploy", "web", w.Dirs[2])
						stale = probe(w.Addr, "version=v2\n", 20)
						t.Logf("then deploy of a good release: exit %d in %v, %d stale fresh answers", r2.Code, r2.Took.Round(time.Millisecond), len(stale))
						if r2.Code != 0 || len(stale) != 0 {
							t.Errorf("deploy of a good release after the failure: exit %d, %d answers not v2 (%v):\n%s", r2.Code, len(stale), stale, r2.Out)
						}
					}
					res := load.Stop()
					t.Logf("load: %s; max latency %v", res, maxLatency(res, 0).Round(time.Millisecond))
					if res.Failed() != 0 {
						t.Errorf("%d failed requests: %v", res.Failed(), res.Errors)
					}
				})
			}
		})
	}
}

// TestDeployBroken: `supctl deploy web <broken release>` fails and leaves
// `current` pointing at the release that was serving.
func TestDeployBroken(t *testing.T) {
	t.Parallel() // no load (see TestMain)
	for _, c := range []struct {
		strategy string
		variant  testenv.Variant
	}{{"swap", testenv.ImportError}, {"usr2", testenv.ImportError}, {"usr2", testenv.Health500}} {
		t.Run(c.strategy+"/"+c.variant.String(), func(t *testing.T) {
			w := startWeb(t, webOpts{Strategy: c.strategy, Timeout: "15s", Releases: []testenv.Release{{Version: "v0"}, {Version: "v1", Variant: c.variant}}})
			r := w.Ctl("deploy", "web", w.Dirs[1])
			link, err := os.Readlink(w.Current)
			t.Logf("deploy of a %s release (%s): exit %d in %v; current -> %s", c.variant, c.strategy, r.Code, r.Took.Round(time.Millisecond), link)
			if err != nil || link != w.Dirs[0] {
				t.Errorf("current -> %q (%v), want %s", link, err, w.Dirs[0])
			}
			if r.Code != 1 || !strings.Contains(r.Out, "pointed "+w.Current+" back at "+w.Dirs[0]) {
				t.Errorf("deploy: exit %d, want 1 and the link pointed back:\n%s", r.Code, r.Out)
			}
			if stale := probe(w.Addr, "version=v0\n", 20); len(stale) != 0 {
				t.Errorf("%d of 20 answers are not v0: %v", len(stale), stale)
			}
			if st := w.App("web"); st.Release != w.Dirs[0] {
				t.Errorf("status release %s, want %s", st.Release, w.Dirs[0])
			}
		})
	}
}
