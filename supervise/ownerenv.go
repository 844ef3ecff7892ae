package supervise

import (
	"context"
	"fmt"
	"github.com/gunisup/supervisor/reload"
	"log/slog"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/health"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/scale"
	"github.com/gunisup/supervisor/status"
)

// generation is one started instance of an app as its owner uses it.
// *gen.Generation and *gen.Orphan satisfy it; the owner's unit tests use a fake whose exit the
// test decides.
type generation interface {
	// Done is closed once the main process has exited; Exit is valid then.
	Done() <-chan struct{}
	Exit() proc.ExitInfo
	Exited() bool
	// Signal sends sig to the main process (nil once it has exited).
	Signal(sig syscall.Signal) error
	// Stop sends sig, waits up to timeout (or ctx), then kills; see gen.Generation.Stop.
	Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) (proc.ExitInfo, error)
	// Kill sends SIGKILL to the main process and its descendants.
	Kill()
	// Info describes it for snapshots, logs and health checks.
	Info() gen.Info
	// Workers lists the live children of the main process.
	Workers() []int
	// Tail returns its last output lines.
	Tail() []string
	// Traceback returns the last Python traceback it wrote to stderr and
	// its exception line (see gunicorn.Traceback; none: nil, "").
	Traceback() (tb []string, exception string)
	String() string
	ExitReason() string
}

// ownerEnv is everything an app's owner needs from the Manager, bound to
// that app: one env per owner.
type ownerEnv interface {
	// spawn forks the app's next generation (numbered by the app's
	// counter) in release dir ("" resolves the app's directory now) on the
	// listening sockets use says, prepared for strategy's reloads.
	spawn(ctx context.Context, dir string, strategy strategy.Strategy, use socketUse) (generation, error)
	// afterExit tidies up after a generation's main process exited.
	afterExit(g generation)
	// endTree returns once nothing g's main process left behind runs.
	endTree(g generation)
	// endStrays ends whatever the stopped app left behind: its cgroup's
	// processes, or daemons re-parented to the supervisor.
	endStrays()
	// endDetached ends the processes g detached from its process group
	// (setsid daemons), before what replaces g starts; g's main process
	// may still be stopping. A usr2 pair's are left to the pair's end.
	endDetached(g generation)
	// serve sends the new connections of the app's steered listeners to
	// its generation id (see gen.Info.ID).
	serve(id int) error
	// refuse closes the app's listeners after a stop by request, so that
	// new connections are refused (see Manager.refuse).
	refuse()
	// relisten binds the app's listeners again where refuse closed them,
	// at the addresses they had (see Manager.relisten).
	relisten() error
	// quiesce returns once no connection waits on the own steered sockets
	// of the app's generation id, or when ctx ends.
	quiesce(ctx context.Context, id int)
	// changed and appExited wake the daemon (never block).
	changed()
	appExited(info proc.ExitInfo)
	// gated records that g passed the app's gate (for the run state).
	gated(g generation)
	// recordChange records the app's deploy or reload in progress (nil:
	// none) in the run state and writes it now.
	recordChange(c *recovery.RunChange) error
	// recordNow writes the run state now (a failure is logged).
	recordNow()
	// swapped starts the comparison of the app's generation newID with
	// oldID, which it replaced now (see apm.App.Swapped): the window, or 0.
	swapped(oldID, newID int) time.Duration
	// statsdAddr is the app's statsd bridge address ("" for none).
	statsdAddr() string
	// listeners describes the app's held sockets.
	listeners() []status.ListenerSnapshot
	// workerStats is where the app's worker controller publishes its
	// target and counts (kept across owners).
	workerStats() *scale.Stats
	// canary returns the app's side of a canary reload, or why the app
	// cannot run one.
	canary() (canarySide, error)
	// usr2 implements the USR2 step of a reload (Gunicorn apps only).
	usr2(ctx context.Context, old generation) (generation, error)
	log() *slog.Logger
	events() status.Observer
}

// prober decides whether a generation g serves at its probe address addr
// (gen.Info.ProbeAddr); *health.Prober is the real one.
type prober interface {
	// Ready returns nil once g serves and passed the health check passes
	// consecutive times, or an error when g exits or ctx ends first.
	Ready(ctx context.Context, g health.Target, addr string, passes int) error
	// Started is Ready after a start: one pass, bounded by start_timeout.
	Started(ctx context.Context, g health.Target, addr string) error
	// Check runs one health check at addr.
	Check(ctx context.Context, addr string) error
}

// managerEnv is the Manager seen through ownerEnv by the owner of app
// cfg, whose slot is s.
type managerEnv struct {
	m   *Manager
	s   *appSlot
	cfg *config.App
}

// table is the app's socket table (an update may replace it).
func (e managerEnv) table() *listen.Table {
	e.m.mu.RLock()
	defer e.m.mu.RUnlock()
	return e.s.table
}

func (e managerEnv) spawn(ctx context.Context, dir string, strategy strategy.Strategy, use socketUse) (generation, error) {
	id := int(e.s.genSeq.Add(1))
	g, err := e.m.spawn(ctx, e.cfg, gen.Request{ID: id, Dir: dir, Strategy: strategy}, use)
	if err != nil {
		e.m.releaseGen(e.cfg.Name, id) // the sockets bound for it, if any
		return nil, err
	}
	e.m.pokeRecord()
	return g, nil
}

func (e managerEnv) gated(g generation) {
	e.s.facts.SetGated(g.Info().Dir)
	e.m.pokeRecord()
}

func (e managerEnv) recordChange(c *recovery.RunChange) error {
	e.s.facts.SetChange(c)
	return e.m.WriteRunState()
}

func (e managerEnv) endTree(g generation) {
	if pg, ok := g.(*gen.Generation); ok {
		e.m.spawner.EndGroup(pg, e.m.stopTimeout(pg.App))
	}
}

// endDetached ends the processes g detached while its main process may
// still drain (see gen.Spawner.EndDetached): g is being retired, and what
// replaces it starts next.
func (e managerEnv) endDetached(g generation) {
	if pg, ok := g.(*gen.Generation); ok {
		e.m.spawner.EndDetached(pg)
	}
}

func (e managerEnv) endStrays() {
	e.m.mu.RLock()
	cg := e.s.cgroup
	e.m.mu.RUnlock()
	e.m.homes.EndApp(e.cfg.Name, cg)
}

func (e managerEnv) afterExit(g generation) {
	switch g := g.(type) {
	case *gen.Generation:
		e.m.releaseGen(g.App, g.ID)
		e.m.afterExit(g)
	case *gen.Orphan:
		e.m.releaseGen(g.App(), gen.OrphanID)
		e.m.relink(g.App())
	}
}

func (e managerEnv) serve(id int) error                  { return e.table().Serve(id) }
func (e managerEnv) quiesce(ctx context.Context, id int) { e.table().Quiesce(ctx, id, queuePoll) }
func (e managerEnv) refuse()                             { e.m.refuse(e.cfg) }
func (e managerEnv) relisten() error                     { return e.m.relisten(e.cfg) }
func (e managerEnv) recordNow()                          { e.m.recordNow(e.cfg.Name) }
func (e managerEnv) changed()                            { e.m.changed() }
func (e managerEnv) appExited(info proc.ExitInfo)        { e.m.appExited(e.cfg.Name, info) }
func (e managerEnv) statsdAddr() string                  { return e.m.statsd(e.cfg.Name) }
func (e managerEnv) workerStats() *scale.Stats           { return &e.s.workers }
func (e managerEnv) log() *slog.Logger                   { return e.m.logger }
func (e managerEnv) events() status.Observer             { return e.m.observer }
func (e managerEnv) swapped(oldID, newID int) time.Duration {
	return e.m.routes.Swapped(e.cfg.Name, oldID, newID)
}

// listeners describes the app's held sockets (see status.Listeners).
func (e managerEnv) listeners() []status.ListenerSnapshot {
	return status.Listeners(e.table().Entries())
}

// usr2 re-executes old's Gunicorn master in place (see
// gen.Spawner.ReExec): the new master shares old's steered sockets, must
// run the release the app's link points at, and is ready once its workers
// booted (see reload.ReExecRefusal). A non-nil generation with an error
// is a new master to abort.
func (e managerEnv) usr2(ctx context.Context, old generation) (generation, error) {
	cfg := e.cfg
	pg, ok := old.(*gen.Generation)
	if !ok {
		return nil, fmt.Errorf("app %s: usr2: %s is not a process of this supervisor", cfg.Name, old)
	}
	g, err := e.m.spawner.ReExec(ctx, cfg, pg, func() int { return int(e.s.genSeq.Add(1)) })
	if err != nil {
		return nil, err
	}
	e.table().Share(pg.ID, g.ID)
	if err := reload.ReExecRefusal(cfg.Directory, g.Dir, pg); err != nil {
		return g, err
	}
	return g, g.AwaitBooted(ctx, pg, cfg.Workers, cfg.Reload.Timeout)
}

var (
	_ generation = (*gen.Generation)(nil)
	_ generation = (*gen.Orphan)(nil)
	_ ownerEnv   = managerEnv{}
	_ prober     = (*health.Prober)(nil)
)
