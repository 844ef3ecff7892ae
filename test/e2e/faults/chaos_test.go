package faults

import (
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
)

// TestChaos repeats the chaos row CHAOS_RUNS times for CHAOS_SECONDS each
// (make chaos); without CHAOS_RUNS it is skipped (the table runs it once
// for 30 s). Each run's random verbs come from a seed it logs; CHAOS_SEED
// replays one.
func TestChaos(t *testing.T) {
	runs, err := strconv.Atoi(os.Getenv("CHAOS_RUNS"))
	if err != nil || runs < 1 {
		t.Skip("set CHAOS_RUNS (and CHAOS_SECONDS, default 60) to run; make chaos")
	}
	secs := 60
	if s := os.Getenv("CHAOS_SECONDS"); s != "" {
		if secs, err = strconv.Atoi(s); err != nil {
			t.Fatalf("CHAOS_SECONDS=%q: %v", s, err)
		}
	}
	for i := 1; i <= runs; i++ {
		t.Run(fmt.Sprintf("run%d", i), func(t *testing.T) {
			chaos(t, chaosSeed(t), time.Duration(secs)*time.Second)
		})
	}
}

// chaosSeed is CHAOS_SEED when set, else a seed from the clock.
func chaosSeed(t *testing.T) int64 {
	t.Helper()
	s := os.Getenv("CHAOS_SEED")
	if s == "" {
		return time.Now().UnixNano()
	}
	seed, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("CHAOS_SEED=%q: %v", s, err)
	}
	return seed
}

// chaosOps are the supctl verbs chaos picks from.
var chaosOps = []string{"restart", "stop", "start", "reload", "reload"}

// chaos runs two apps under load while two actors send random verbs to
// random apps for d. With the apps as the verbs left them, it waits for
// each to settle in running or stopped and checks that each running app has
// exactly one tracked Gunicorn master (its status master), a stopped one
// none, and that no Gunicorn of the test runs outside the supervisor's tree;
// then it starts every app and checks again.
func chaos(t *testing.T, seed int64, d time.Duration) {
	f := start(t, opts{Apps: []string{"web", "api"}})
	loads := []*e2e.Loader{e2e.StartLoad("tcp", f.Addr("web"), "/", 4), e2e.StartLoad("tcp", f.Addr("api"), "/", 4)}
	var mu sync.Mutex
	counts := map[string]int{}
	slowest := map[string]time.Duration{}
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	for actor := 0; actor < 2; actor++ {
		rng := rand.New(rand.NewSource(seed*100 + int64(actor)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				op, app := chaosOps[rng.Intn(len(chaosOps))], f.apps[rng.Intn(len(f.apps))]
				r := f.Ctl(op, app)
				mu.Lock()
				counts[fmt.Sprintf("%s=%d", op, r.Code)]++
				slowest[op] = max(slowest[op], r.Took.Round(time.Millisecond))
				mu.Unlock()
				if r.Code != 0 && r.Code != 1 {
					t.Errorf("supctl %s %s: exit %d: %s", op, app, r.Code, r.Out)
				}
			}
		}()
	}
	wg.Wait()
	f.assertTracked()
	t.Logf("seed %d, %v: supctl exits by verb %v; slowest run by verb %v", seed, d, counts, slowest)
	t.Logf("end: %s", f.summary())
	// Start the apps the verbs left stopped: the connections their held
	// sockets queued meanwhile are then answered, and the loads can end.
	for _, app := range f.apps {
		if out, code := f.SupctlRun("start", app); code != 0 && !strings.Contains(out, "already") {
			t.Errorf("supctl start %s: exit %d: %s", app, code, out)
		}
	}
	for i, l := range loads {
		t.Logf("%s load (failures expected while stopped): %s", f.apps[i], l.Stop())
	}
	f.assertTracked()
}

// summary is one line per app of `supctl status --json`.
func (f *fx) summary() string {
	st, err := f.statusJSON()
	if err != nil {
		return err.Error()
	}
	var states []string
	for _, a := range st.Apps {
		states = append(states, fmt.Sprintf("%s %s master %d generation %d restarts %d", a.Name, a.State, a.MasterPID, a.Generation, a.Restarts))
	}
	return strings.Join(states, "; ")
}
