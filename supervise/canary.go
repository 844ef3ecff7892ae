package supervise

import (
	"context"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/errinbox"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
)

// canaryHost is the reload.CanaryHost of one canary reload: the run, plus
// the app's steering split, judgement and status view from its Manager
// side e.
type canaryHost struct {
	*reloadRun
	e managerEnv
}

// Split implements reload.CanaryHost (see listen.Table.Split).
func (h canaryHost) Split(old, g reload.Gen, share float64) error {
	return h.e.table().Split(asGen(old).Info().ID, asGen(g).Info().ID, share)
}

// Judge implements reload.CanaryHost: the route metrics' verdict with the
// app's limits (apm.App.JudgeCanary) and the exception groups first seen
// in g (errinbox.Inbox.NewGroups).
func (h canaryHost) Judge(old, g reload.Gen, from time.Time) reload.Judgement {
	app, newID := h.a.cfg.Name, asGen(g).Info().ID
	v := h.e.m.routes.App(app).JudgeCanary(asGen(old).Info().ID, newID, from, h.a.cfg.Reload.CanaryLimits)
	j := reload.Judgement{Worse: v.Worse, Final: v.Enough, Figures: v.Figures}
	if groups := h.e.m.errorInbox(app).NewGroups(newID); len(groups) > 0 {
		j.Worse, j.Final = append(j.Worse, groups...), true
	}
	return j
}

// WorkerDeaths implements reload.CanaryHost (errinbox.Inbox.WorkerDeaths;
// 0 without an inbox).
func (h canaryHost) WorkerDeaths(g reload.Gen) uint64 {
	return h.e.m.errorInbox(h.a.cfg.Name).WorkerDeaths(asGen(g).Info().ID)
}

// Judged implements reload.CanaryHost: the app's view in its slot.
func (h canaryHost) Judged(g reload.Gen, share float64, began time.Time, j reload.Judgement) {
	h.e.s.canary.Set(asGen(g).Info().ID, h.canary, share, began, j)
}

// errorInbox returns app's error inbox, nil for none.
func (m *Manager) errorInbox(app string) *errinbox.Inbox {
	if m.inbox == nil {
		return nil
	}
	return m.inbox(app)
}

// canaryRefusal returns the Manager side a canary with strategy st runs in, or
// why the app cannot run one: st allows none, the owner runs outside a
// Manager (a test's), a listener cannot split by weight (see
// listen.Table.CanSplit), or route metrics are off (the judgement reads
// them).
func (a *appOwner) canaryRefusal(st strategy.Strategy) (managerEnv, error) {
	env, ok := a.env.(managerEnv)
	app := a.cfg.Name
	switch err := st.CanCanary(); {
	case err != nil:
		return env, fmt.Errorf("app %s: %w", app, err)
	case !ok:
		return env, fmt.Errorf("app %s: canaries are not available here", app)
	}
	if err := env.table().CanSplit(); err != nil {
		return env, fmt.Errorf("app %s: --canary: %w", app, err)
	}
	if m := env.m; m.routes == nil || m.routes.App(app) == nil {
		return env, fmt.Errorf("app %s: --canary: the canary is judged on route metrics: set route_metrics = true in [app.%s]", app, app)
	}
	return env, nil
}

// runSteps runs the reload run: a canary (reload.Canary) when its plan is
// on, the steps of strategy st (reload.Run) otherwise.
func runSteps(ctx context.Context, st strategy.Strategy, run *reloadRun, progress reload.Progress) (reload.Gen, error) {
	if !run.canary.On() {
		return reload.Run(ctx, st, run, run.old, progress)
	}
	return reload.Canary(ctx, canaryHost{reloadRun: run, e: run.canaryIn}, run.old, run.canary, progress)
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
