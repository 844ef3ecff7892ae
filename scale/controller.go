// Package scale sizes a Gunicorn app's workers while it serves: a
// controller per app samples the serving master's workers (CPU and
// memory, from /proc) and the accept queues of the app's listeners, moves
// the master within the app's workers range by TTIN and TTOU (the
// decision is the pure scaler's), and recycles a worker whose memory
// stays over max_worker_rss. The app's owner starts and stops it and
// provides what it acts through (Owner); what it decides is published in
// Stats, which outlives it.
package scale

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/sockdiag"
	"github.com/gunisup/supervisor/proc"
)

// The memory recycler's figures (see controller.recycle).
const (
	// rssSamples consecutive samples over max_worker_rss mark a worker for
	// recycling: one sample over may be a request's transient peak.
	rssSamples = 3
	// recycleCooldown follows the exit of a recycled worker before the
	// next one is sent TERM, so the app never loses two workers at once.
	recycleCooldown = 500 * time.Millisecond
	// recycleWait bounds the wait for a recycled worker to exit (it
	// finishes its request first; Gunicorn's own timeout kills a stuck
	// one): after it, the recycler moves on and logs that it did not exit.
	recycleWait = time.Minute
	// signalWait bounds the delivery of TTIN or TTOU through the owner.
	signalWait = 2 * time.Second
	// beliefDrift: a live worker count that differs from what the master
	// was told for this long (no step, no recycling in between) replaces
	// the belief, in case a signal was lost.
	beliefDrift = 10 * time.Second
)

// Stats is what an app's worker controller publishes. Its keeper (the
// supervisor's record of the app) outlives the controllers, so a new
// owner (an update) and a new generation (a reload) start from the
// current target.
type Stats struct {
	target      atomic.Int64
	recycledRSS atomic.Uint64
}

// Target returns the worker target of an app with a workers range (0:
// none, or no sample yet).
func (st *Stats) Target() int { return int(st.target.Load()) }

// Recycled returns the count of workers sent TERM for their memory.
func (st *Stats) Recycled() uint64 { return st.recycledRSS.Load() }

// Owner is what a controller needs of its app's owner.
type Owner interface {
	// Serving returns the main process of the serving generation and the
	// app's open listeners, or 0 while the app is not running, reloads (two
	// masters) or has no main process.
	Serving() (master int, listeners []Listener)
	// SignalMaster sends sig to the serving generation's main process
	// through the owner, and returns the process it went to.
	SignalMaster(ctx context.Context, sig syscall.Signal) (pid int, err error)
}

// Listener is one open listener of the app, whose accept queue counts
// toward its saturation.
type Listener struct {
	FD      int
	Network string
	Address string
}

// WorkersFor returns app with Workers set to the current target of its
// workers range, so that a new generation starts at the capacity the
// serving one scaled to (app itself without a range or before any target).
func WorkersFor(app *config.App, st *Stats) *config.App {
	if app.WorkersMax == 0 || st == nil {
		return app
	}
	t := int(st.target.Load())
	if t == 0 {
		return app
	}
	c := *app
	c.Workers = max(app.Workers, min(t, app.WorkersMax))
	return &c
}

// controller scales the workers of one Gunicorn app within its workers
// range and recycles workers over max_worker_rss. Its goroutine (run)
// alone touches its fields; it asks the owner what serves, signals the
// master through the owner and a worker directly, after checking that it
// is still a child of the master.
type controller struct {
	owner Owner
	log   *slog.Logger
	app   *config.App
	stats *Stats
	scale *scaler // nil without a range
	// adopt: no target was published before this controller (a new
	// supervisor process, which may have taken a running master over from
	// its predecessor): the first master seen sets the target to its count.
	adopt bool
	// master is the main process the fields below describe (0: none).
	master int
	// belief is the master's worker count as told (0: not known yet);
	// driftSince is when the live count began to differ from it.
	belief     int
	driftSince time.Time
	// cpu holds each worker's CPU seconds at lastAt.
	cpu    map[int]float64
	lastAt time.Time
	// over counts each worker's consecutive samples over the RSS limit.
	over map[int]int
	// recycling is the worker sent TERM (0: none), at recycledAt;
	// nextRecycle is the earliest time of the next TERM.
	recycling   int
	recycledAt  time.Time
	nextRecycle time.Time
}

// Start starts the worker controller of app, if it is a Gunicorn app with
// a workers range or max_worker_rss, on its own goroutine, publishing to
// st and logging to log; it returns the function that stops it and waits
// for its end (the owner calls it before it exits, so that no controller
// of an old owner outlives it). Without a range, app's published target
// is 0; with st nil, nothing starts.
func Start(ctx context.Context, app *config.App, st *Stats, o Owner, log *slog.Logger) (stop func()) {
	w := newController(app, st, o, log)
	if w == nil {
		return func() {}
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.run(wctx)
	}()
	return func() {
		cancel()
		<-done
	}
}

// newController returns the controller of app, or nil when st is nil or
// the app has neither a workers range nor max_worker_rss. Without a range,
// the app's published target is 0.
func newController(app *config.App, st *Stats, o Owner, log *slog.Logger) *controller {
	if st == nil {
		return nil
	}
	if app.Kind != config.KindGunicorn || app.WorkersMax == 0 {
		st.target.Store(0)
	}
	if app.Kind != config.KindGunicorn || (app.WorkersMax == 0 && app.MaxWorkerRSS == 0) {
		return nil
	}
	w := &controller{owner: o, log: log, app: app, stats: st}
	if app.WorkersMax > 0 {
		prev := int(w.stats.target.Load())
		w.scale = newScaler(app.Workers, app.WorkersMax, prev)
		w.adopt = prev == 0
		w.stats.target.Store(int64(w.scale.target))
	}
	w.forget()
	return w
}

// run samples until ctx ends.
func (w *controller) run(ctx context.Context) {
	t := time.NewTicker(workerSampleEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			w.tick(ctx, now)
		}
	}
}

// forget drops what was known of a master (it changed or stopped).
func (w *controller) forget() {
	w.master, w.belief, w.driftSince = 0, 0, time.Time{}
	w.cpu, w.lastAt, w.over = map[int]float64{}, time.Time{}, map[int]int{}
	w.recycling = 0
}

// tick takes one sample of the serving generation and acts on it. Nothing
// is done while the app is not running or a reload runs (two masters).
func (w *controller) tick(ctx context.Context, now time.Time) {
	master, listeners := w.owner.Serving()
	if master == 0 {
		w.forget()
		return
	}
	if master != w.master {
		w.forget()
		w.master = master
	}
	tree, err := proc.NewTree("")
	if err != nil {
		return
	}
	workers := tree.LiveChildren(w.master)
	if len(workers) == 0 {
		return // the master is booting or gone; its exit reaches the owner
	}
	busy, rss := w.measure(tree, workers, now)
	if w.scale != nil {
		w.scaleStep(ctx, listeners, len(workers), busy, now)
	}
	if w.app.MaxWorkerRSS > 0 {
		w.recycle(workers, rss, now)
	}
}

// measure returns the busy ratio of workers since the last sample
// (negative when no worker was seen then) and each worker's RSS in bytes.
func (w *controller) measure(tree *proc.Tree, workers []int, now time.Time) (busy float64, rss map[int]int) {
	rss = make(map[int]int, len(workers))
	cpu := make(map[int]float64, len(workers))
	var used float64
	var counted int
	for _, pid := range workers {
		st, ok := tree.Stat(pid)
		if !ok {
			continue
		}
		cpu[pid] = st.CPUTime()
		rss[pid] = st.ResidentMemory()
		if prev, ok := w.cpu[pid]; ok {
			used += cpu[pid] - prev
			counted++
		}
	}
	busy = -1
	if counted > 0 && !w.lastAt.IsZero() {
		if wall := now.Sub(w.lastAt).Seconds(); wall > 0 {
			busy = used / (wall * float64(counted))
		}
	}
	w.cpu, w.lastAt = cpu, now
	return busy, rss
}

// queueDepth sums the accept queues of the app's listeners.
func queueDepth(ls []Listener) int {
	var r sockdiag.Reader
	n := 0
	for _, l := range ls {
		if d, ok := r.Read(l.FD, l.Network, l.Address); ok {
			n += int(d.Length)
		}
	}
	return n
}

// scaleStep feeds the scaler one sample, logs its step, and moves the
// master one worker toward the target.
func (w *controller) scaleStep(ctx context.Context, listeners []Listener, live int, busy float64, now time.Time) {
	if w.belief == 0 {
		w.belief = live
		if w.adopt {
			w.adopt = false
			w.scale.target = max(w.scale.min, min(live, w.scale.max))
		}
	}
	w.checkDrift(live, now)
	queue := queueDepth(listeners)
	from := w.scale.target
	step, reason := w.scale.observe(scaleSample{at: now, queue: queue, busy: busy})
	w.stats.target.Store(int64(w.scale.target))
	if step != 0 {
		dir := "up"
		if step < 0 {
			dir = "down"
		}
		w.log.Info("workers scaled", "app", w.app.Name, "direction", dir, "from", from, "to", w.scale.target,
			"live", live, "queue", queue, "busy", busyText(busy), "reason", reason)
	}
	w.reconcile(ctx)
}

// checkDrift replaces the belief by the live count once they have
// differed for beliefDrift with no recycling in flight.
func (w *controller) checkDrift(live int, now time.Time) {
	if live == w.belief || w.recycling != 0 {
		w.driftSince = time.Time{}
		return
	}
	if w.driftSince.IsZero() {
		w.driftSince = now
		return
	}
	if now.Sub(w.driftSince) >= beliefDrift {
		w.log.Warn("workers count differs from what the master was told", "app", w.app.Name,
			"told", w.belief, "live", live, "for", now.Sub(w.driftSince).Round(time.Second))
		w.belief, w.driftSince = live, time.Time{}
	}
}

// reconcile sends the master one TTIN or TTOU when its worker count is
// believed to differ from the target: one signal per sample, so that two
// never coalesce into one pending signal.
func (w *controller) reconcile(ctx context.Context) {
	var sig syscall.Signal
	var delta int
	switch {
	case w.belief < w.scale.target:
		sig, delta = syscall.SIGTTIN, 1
	case w.belief > w.scale.target:
		sig, delta = syscall.SIGTTOU, -1
	default:
		return
	}
	sctx, cancel := context.WithTimeout(ctx, signalWait)
	defer cancel()
	pid, err := w.owner.SignalMaster(sctx, sig)
	switch {
	case err != nil:
		w.log.Warn("workers signal", "app", w.app.Name, "signal", sig.String(), "err", err)
	case pid != w.master:
		w.forget() // the serving generation changed under the sample
	default:
		w.belief += delta
		w.driftSince = time.Time{}
	}
}

// recycle sends TERM to one worker whose RSS stayed over max_worker_rss
// for rssSamples samples: Gunicorn's sync worker finishes the request in
// hand and exits, and the master forks a replacement. One worker at a
// time: the next waits until the last one left (or recycleWait passed)
// and recycleCooldown after that.
func (w *controller) recycle(workers []int, rss map[int]int, now time.Time) {
	over := make(map[int]int, len(workers))
	for _, pid := range workers {
		if int64(rss[pid]) > w.app.MaxWorkerRSS {
			over[pid] = w.over[pid] + 1
		}
	}
	w.over = over
	if w.recycling != 0 {
		if _, live := rss[w.recycling]; live && now.Sub(w.recycledAt) < recycleWait {
			return
		} else if live {
			w.log.Warn("recycled worker did not exit", "app", w.app.Name, "pid", w.recycling, "waited", recycleWait)
		}
		w.recycling, w.nextRecycle = 0, now.Add(recycleCooldown)
	}
	if now.Before(w.nextRecycle) {
		return
	}
	pick := 0
	for pid, n := range over {
		if n >= rssSamples && pid != w.master && (pick == 0 || rss[pid] > rss[pick]) {
			pick = pid
		}
	}
	if pick == 0 {
		return
	}
	if err := syscall.Kill(pick, syscall.SIGTERM); err != nil {
		if !errors.Is(err, syscall.ESRCH) {
			w.log.Warn("recycle worker", "app", w.app.Name, "pid", pick, "err", fmt.Errorf("TERM to worker %d: %w", pick, err))
		}
		return
	}
	w.recycling, w.recycledAt = pick, now
	w.stats.recycledRSS.Add(1)
	w.log.Info("worker recycled", "app", w.app.Name, "pid", pick, "reason", "rss",
		"rss_mib", rss[pick]>>20, "limit_mib", w.app.MaxWorkerRSS>>20, "samples_over", over[pick])
}
