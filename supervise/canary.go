package supervise

import (
	"context"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/errinbox"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
)

// canarySide is what a canary reload needs from its app's Manager side,
// by generation ID: the steering split, the judgement and the status view.
type canarySide interface {
	// split sends share of the new connections to newID, the rest to oldID
	// (see listen.Table.Split).
	split(oldID, newID int, share float64) error
	// judge is the verdict on newID against oldID since from: the route
	// metrics' (apm.App.JudgeCanary with the app's limits), plus the
	// exception groups first seen in newID (errinbox.Inbox.NewGroups).
	judge(oldID, newID int, from time.Time) reload.Judgement
	// workerDeaths counts the workers of generation id that died (0
	// without an error inbox).
	workerDeaths(id int) uint64
	// judged publishes a step's judgement of generation id in the app's
	// status view.
	judged(id int, plan strategy.Canary, share float64, began time.Time, j reload.Judgement)
}

// canaryHost is the reload.CanaryHost of one canary reload: the run, plus
// its app's canary side.
type canaryHost struct {
	*reloadRun
	side canarySide
}

func idOf(g reload.Gen) int { return asGen(g).Info().ID }

// Split implements reload.CanaryHost.
func (h canaryHost) Split(old, g reload.Gen, share float64) error {
	return h.side.split(idOf(old), idOf(g), share)
}

// Judge implements reload.CanaryHost.
func (h canaryHost) Judge(old, g reload.Gen, from time.Time) reload.Judgement {
	return h.side.judge(idOf(old), idOf(g), from)
}

// WorkerDeaths implements reload.CanaryHost.
func (h canaryHost) WorkerDeaths(g reload.Gen) uint64 { return h.side.workerDeaths(idOf(g)) }

// Judged implements reload.CanaryHost.
func (h canaryHost) Judged(g reload.Gen, share float64, began time.Time, j reload.Judgement) {
	h.side.judged(idOf(g), h.canary, share, began, j)
}

// canary implements ownerEnv: the env itself, once the app's listeners can
// split by weight (listen.Table.CanSplit) and its route metrics are on
// (the judgement reads them).
func (e managerEnv) canary() (canarySide, error) {
	app := e.cfg.Name
	if err := e.table().CanSplit(); err != nil {
		return nil, fmt.Errorf("app %s: --canary: %w", app, err)
	}
	if e.m.routes == nil || e.m.routes.App(app) == nil {
		return nil, fmt.Errorf("app %s: --canary: the canary is judged on route metrics: set route_metrics = true in [app.%s]", app, app)
	}
	return e, nil
}

func (e managerEnv) split(oldID, newID int, share float64) error {
	return e.table().Split(oldID, newID, share)
}

func (e managerEnv) judge(oldID, newID int, from time.Time) reload.Judgement {
	v := e.m.routes.App(e.cfg.Name).JudgeCanary(oldID, newID, from, e.cfg.Reload.CanaryLimits)
	j := reload.Judgement{Worse: v.Worse, Final: v.Enough, Figures: v.Figures}
	if groups := e.m.errorInbox(e.cfg.Name).NewGroups(newID); len(groups) > 0 {
		j.Worse, j.Final = append(j.Worse, groups...), true
	}
	return j
}

func (e managerEnv) workerDeaths(id int) uint64 {
	return e.m.errorInbox(e.cfg.Name).WorkerDeaths(id)
}

func (e managerEnv) judged(id int, plan strategy.Canary, share float64, began time.Time, j reload.Judgement) {
	e.s.canary.Set(id, plan, share, began, j)
}

// errorInbox returns app's error inbox, nil for none.
func (m *Manager) errorInbox(app string) *errinbox.Inbox {
	if m.inbox == nil {
		return nil
	}
	return m.inbox(app)
}

// canaryRefusal returns the canary side a canary with strategy st runs
// with, or why the app cannot run one: st allows none, or the app's side
// refuses (see ownerEnv.canary).
func (a *appOwner) canaryRefusal(st strategy.Strategy) (canarySide, error) {
	if err := st.CanCanary(); err != nil {
		return nil, fmt.Errorf("app %s: %w", a.cfg.Name, err)
	}
	return a.env.canary()
}

// runSteps runs the reload run: a canary (reload.Canary) when its plan is
// on, the steps of strategy st (reload.Run) otherwise.
func runSteps(ctx context.Context, st strategy.Strategy, run *reloadRun, progress reload.Progress) (reload.Gen, error) {
	if !run.canary.On() {
		return reload.Run(ctx, st, run, run.old, progress)
	}
	return reload.Canary(ctx, canaryHost{reloadRun: run, side: run.canaryIn}, run.old, run.canary, progress)
}

// joinLines joins the non-empty lines of a status field with "; ".
func joinLines(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "":
		return a
	}
	return a + "; " + b
}
