package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/health"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/scale"
	"github.com/gunisup/supervisor/status"
)

// fakeGen is a generation whose exit the test decides. By default it exits
// 0 when signalled (a well-behaved process); a stubborn one ignores signals
// until the test calls exit, or Kill.
type fakeGen struct {
	id       int
	started  time.Time
	done     chan struct{}
	once     sync.Once
	exit     proc.ExitInfo
	stubborn bool
	// verdict receives the readiness verdict the fake prober returns for it.
	verdict chan error
	// use is the listening sockets it was spawned on.
	use socketUse

	mu      sync.Mutex
	signals []syscall.Signal
}

func (g *fakeGen) finish(info proc.ExitInfo) {
	g.once.Do(func() {
		g.exit = info
		close(g.done)
	})
}

// crash ends the generation with exit code code.
func (g *fakeGen) crash(code int) { g.finish(proc.ExitInfo{Code: code, Time: time.Now()}) }

func (g *fakeGen) Done() <-chan struct{} { return g.done }
func (g *fakeGen) Exit() proc.ExitInfo   { <-g.done; return g.exit }
func (g *fakeGen) Exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

func (g *fakeGen) Signal(sig syscall.Signal) error {
	g.mu.Lock()
	g.signals = append(g.signals, sig)
	stubborn := g.stubborn
	g.mu.Unlock()
	if !stubborn {
		g.finish(proc.ExitInfo{Time: time.Now()})
	}
	return nil
}

// yield makes a stubborn generation exit on its next signal.
func (g *fakeGen) yield() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stubborn = false
}

func (g *fakeGen) signalled() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.signals) > 0
}

func (g *fakeGen) Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) (proc.ExitInfo, error) {
	if err := g.Signal(sig); err != nil {
		return proc.ExitInfo{}, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.done:
	case <-t.C:
		g.Kill()
	case <-ctx.Done():
		g.Kill()
	}
	return g.Exit(), nil
}

func (g *fakeGen) Kill() {
	g.finish(proc.ExitInfo{Code: -1, Signal: int(syscall.SIGKILL), Time: time.Now()})
}
func (g *fakeGen) Workers() []int                { return nil }
func (g *fakeGen) Tail() []string                { return nil }
func (g *fakeGen) Traceback() ([]string, string) { return nil, "" }
func (g *fakeGen) String() string                { return fmt.Sprintf("fake generation %d", g.id) }
func (g *fakeGen) ExitReason() string            { return g.Exit().String() }
func (g *fakeGen) Info() gen.Info {
	return gen.Info{ID: g.id, PID: 100000 + g.id, Started: g.started, Dir: "/srv/release"}
}

// fakeEnv is the Manager and prober of one owner under test: it spawns
// fakeGens and hands each to the test on spawned.
type fakeEnv struct {
	t         *testing.T
	spawned   chan *fakeGen
	mu        sync.Mutex
	all       []*fakeGen
	stubborn  bool  // new generations ignore signals
	spawnErr  error // spawn fails
	healthErr error
	seq       int
	reloads   []string
	// steps records serve and quiesce calls in order ("serve 2", "quiesce 1").
	steps []string
	// detached records endDetached calls (see endDetached).
	detached []string
	// refused counts refuse calls; relistenErr fails relisten.
	refused     int
	relistenErr error
	// steered are the app's listeners (none unless a test sets them).
	steered []status.ListenerSnapshot
}

func newFakeEnv(t *testing.T) *fakeEnv {
	return &fakeEnv{t: t, spawned: make(chan *fakeGen, 100)}
}

func (e *fakeEnv) spawn(_ context.Context, _ string, _ strategy.Strategy, use socketUse) (generation, error) {
	return e.newGen(e.nextGen(), use)
}

// newGen makes generation id on the sockets use says and hands it to the test.
func (e *fakeEnv) newGen(id int, use socketUse) (generation, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.spawnErr != nil {
		return nil, e.spawnErr
	}
	g := &fakeGen{id: id, started: time.Now(), done: make(chan struct{}), stubborn: e.stubborn, verdict: make(chan error, 1), use: use}
	e.all = append(e.all, g)
	e.spawned <- g
	return g, nil
}

// nextGen allocates the next generation number.
func (e *fakeEnv) nextGen() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.seq++
	return e.seq
}

func (e *fakeEnv) afterExit(generation)                   {}
func (e *fakeEnv) gated(generation)                       {}
func (e *fakeEnv) recordChange(*recovery.RunChange) error { return nil }
func (e *fakeEnv) recordNow()                             {}
func (e *fakeEnv) endTree(generation)                     {}
func (e *fakeEnv) endStrays()                             {}
func (e *fakeEnv) refuse() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.refused++
}

func (e *fakeEnv) relisten() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.relistenErr
}

// refuses returns how many times the owner closed the listeners.
func (e *fakeEnv) refuses() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.refused
}

// endDetached records which generation's detached processes were ended and
// how many generations had been spawned then ("1 of 1").
func (e *fakeEnv) endDetached(g generation) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.detached = append(e.detached, fmt.Sprintf("%d of %d", g.Info().ID, len(e.all)))
}
func (e *fakeEnv) serve(id int) error {
	e.step(fmt.Sprintf("serve %d", id))
	return nil
}

func (e *fakeEnv) quiesce(_ context.Context, id int) {
	e.step(fmt.Sprintf("quiesce %d signalled=%v", id, e.gen(id).signalled()))
}

// gen returns the generation spawned with number id (nil for none).
func (e *fakeEnv) gen(id int) *fakeGen {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, g := range e.all {
		if g.Info().ID == id {
			return g
		}
	}
	return nil
}

func (e *fakeEnv) step(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.steps = append(e.steps, s)
}

// takeSteps returns the serve and quiesce calls recorded since the last call.
func (e *fakeEnv) takeSteps() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := e.steps
	e.steps = nil
	return out
}
func (e *fakeEnv) changed()                             {}
func (e *fakeEnv) appExited(proc.ExitInfo)              {}
func (e *fakeEnv) statsdAddr() string                   { return "" }
func (e *fakeEnv) listeners() []status.ListenerSnapshot { return e.steered }
func (e *fakeEnv) swapped(int, int) time.Duration       { return 0 }
func (e *fakeEnv) workerStats() *scale.Stats            { return &scale.Stats{} }
func (e *fakeEnv) log() *slog.Logger                    { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func (e *fakeEnv) events() status.Observer              { return status.NopObserver{} }

// usr2 re-execs in place: a new generation that has booted at once.
func (e *fakeEnv) canary() (canarySide, error) {
	return nil, errors.New("canaries are not available here")
}

func (e *fakeEnv) usr2(context.Context, generation) (generation, error) {
	return e.newGen(e.nextGen(), useServing) // a USR2 child inherits its parent's sockets
}

// live lists the generations that have not exited.
func (e *fakeEnv) live() []*fakeGen {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*fakeGen
	for _, g := range e.all {
		if !g.Exited() {
			out = append(out, g)
		}
	}
	return out
}

func (e *fakeEnv) setHealth(err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.healthErr = err
}

// Started and Ready wait for the verdict the test sends on g.verdict.
func (e *fakeEnv) Started(ctx context.Context, g health.Target, addr string) error {
	return e.Ready(ctx, g, addr, 1)
}

func (e *fakeEnv) Ready(ctx context.Context, g health.Target, _ string, _ int) error {
	fg := g.(*fakeGen)
	select {
	case err := <-fg.verdict:
		return err
	case <-fg.done:
		return fmt.Errorf("exited: %s", fg.Exit())
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (e *fakeEnv) Check(context.Context, string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.healthErr
}

// testApp is a process app with millisecond timings.
func testApp() *config.App {
	return &config.App{
		Name:         "web",
		Kind:         config.KindProcess,
		Restart:      config.RestartAlways,
		StopSignal:   syscall.SIGTERM,
		StopTimeout:  2 * time.Second,
		StartTimeout: 2 * time.Second,
		Backoff:      config.Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, StableAfter: time.Hour, CrashWindow: time.Hour, CrashLimit: 3},
		Reload:       config.Reload{Strategy: strategy.Overlap, Timeout: 5 * time.Second}, // what config gives a process app
		Health:       config.Health{Interval: time.Hour, HealthyAfter: 1, UnhealthyAfter: 2},
	}
}

// ownerRig is one owner running on a fakeEnv.
type ownerRig struct {
	t   *testing.T
	env *fakeEnv
	a   *appOwner
	ctx context.Context
}

// startRig runs an owner for cfg; the test's cleanup stops it and checks
// that nothing it started still runs.
func startRig(t *testing.T, cfg *config.App) *ownerRig {
	t.Helper()
	env := newFakeEnv(t)
	ctx, cancel := context.WithCancel(context.Background())
	r := &ownerRig{t: t, env: env, a: newOwner(env, env, cfg), ctx: ctx}
	go r.a.run(ctx)
	t.Cleanup(func() {
		for _, g := range env.live() {
			g.yield()
		}
		if err := r.a.send(ctx, stopMsg{call: newCall()}); err != nil {
			t.Errorf("final stop: %v", err)
		}
		if live := env.live(); len(live) > 0 {
			t.Errorf("after the final stop, %d generations still run: %v", len(live), live)
		}
		cancel()
		<-r.a.exited
	})
	return r
}

// do sends m and returns the reply (within a second).
func (r *ownerRig) do(m message) error {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
	defer cancel()
	return r.a.send(ctx, m)
}

// async sends m in the background; the channel gets the reply.
func (r *ownerRig) async(m message) <-chan error {
	out := make(chan error, 1)
	go func() { out <- r.a.send(r.ctx, m) }()
	return out
}

// next returns the next spawned generation (within a second).
func (r *ownerRig) next() *fakeGen {
	r.t.Helper()
	select {
	case g := <-r.env.spawned:
		return g
	case <-time.After(2 * time.Second):
		r.t.Fatal("no generation spawned")
		return nil
	}
}

// noSpawn fails if a generation is spawned within d.
func (r *ownerRig) noSpawn(d time.Duration) {
	r.t.Helper()
	select {
	case g := <-r.env.spawned:
		r.t.Fatalf("unexpected spawn of %s", g)
	case <-time.After(d):
	}
}

// snap returns the owner's snapshot once everything sent before was handled.
func (r *ownerRig) snap() status.AppSnapshot {
	r.t.Helper()
	// The owner publishes after each message, before taking the next one.
	for range 2 {
		if err := r.do(pingMsg{newCall()}); err != nil {
			r.t.Fatal(err)
		}
	}
	return *r.a.snap.Load()
}

// waitFor polls the snapshot until cond holds (within two seconds).
func (r *ownerRig) waitFor(what string, cond func(status.AppSnapshot) bool) status.AppSnapshot {
	r.t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		s := r.snap()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("waiting for %s: state %s gen %d reloading %v message %q", what, s.State, s.Generation, s.Reloading, s.Message)
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

func (r *ownerRig) waitState(st status.State) status.AppSnapshot {
	r.t.Helper()
	return r.waitFor("state "+st.String(), func(s status.AppSnapshot) bool { return s.State == st })
}

// known asks the owner which generations it accounts for.
func (r *ownerRig) known() []generation {
	r.t.Helper()
	var out []generation
	if err := r.do(accountMsg{call: newCall(), out: &out}); err != nil {
		r.t.Fatal(err)
	}
	return out
}

// checkInvariant fails unless every live generation is one the owner
// accounts for (tracked, a reload's, or retiring). A reload registers its
// new generation just after the spawn returns, so the check polls briefly.
func (r *ownerRig) checkInvariant() {
	r.t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		stray := r.strays()
		if len(stray) == 0 {
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("generations run that the owner does not know: %v (known: %v)", stray, r.known())
		}
		time.Sleep(time.Millisecond) // polling a condition with a deadline
	}
}

// strays lists live generations the owner does not account for.
func (r *ownerRig) strays() []*fakeGen {
	live := r.env.live() // before known: a generation spawned meanwhile is not listed
	known := r.known()
	var out []*fakeGen
	for _, g := range live {
		if !slices.Contains(known, generation(g)) && !g.Exited() {
			out = append(out, g)
		}
	}
	return out
}

// running starts the app and makes its first generation ready.
func (r *ownerRig) running() *fakeGen {
	r.t.Helper()
	if err := r.do(startMsg{newCall()}); err != nil {
		r.t.Fatal(err)
	}
	g := r.next()
	g.verdict <- nil
	r.waitState(status.Running)
	return g
}

// waitExit waits until g has exited.
func waitExit(t *testing.T, g *fakeGen) {
	t.Helper()
	select {
	case <-g.done:
	case <-time.After(2 * time.Second):
		t.Fatalf("%s did not exit", g)
	}
}

// reply waits for an async reply.
func reply(t *testing.T, ch <-chan error) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(2 * time.Second):
		t.Fatal("no reply")
		return nil
	}
}
