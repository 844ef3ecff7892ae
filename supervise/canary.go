package supervise

import (
	"context"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/errinbox"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/listen/steer"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
)

// canaryEnv is what a canary needs from the owner's environment beyond
// ownerEnv (the Manager has it; an environment without it refuses
// canaries).
type canaryEnv interface {
	// canSplit returns nil when every listener of app can split its new
	// connections by weight, a *listen.SplitError or a reason otherwise.
	canSplit(app string) error
	splitGen(app string, oldID, newID int, share float64) error
	judgeGen(app string, oldID, newID int, from time.Time, limits config.CanaryLimits) reload.Judgement
	canaryView(app string) *reload.CanaryView
	// workerDeaths counts the workers of app's generation gen that timed
	// out or were killed.
	workerDeaths(app string, gen int) uint64
}

// managerEnv is the Manager's canaryEnv.
var _ canaryEnv = managerEnv{}

// canaryView is app's view in its slot (an app whose owner runs has one).
func (e managerEnv) canaryView(app string) *reload.CanaryView { return &e.m.slot(app).canary }

// workerDeaths is errinbox.Inbox.WorkerDeaths (0 without an inbox).
func (e managerEnv) workerDeaths(app string, gen int) uint64 {
	return e.m.errorInbox(app).WorkerDeaths(gen)
}

// canSplit implements canaryEnv: every listener must be BPF-steered, and
// route metrics on (the judgement reads them).
func (e managerEnv) canSplit(app string) error {
	m := e.m
	es := m.view(app).table.Entries()
	if len(es) == 0 {
		return &listen.SplitError{}
	}
	for _, en := range es {
		if en.Mode() != steer.ModeBPF {
			return &listen.SplitError{Listener: en.Socket.Spec.Raw, Mode: en.Mode()}
		}
	}
	if m.routes == nil || m.routes.App(app) == nil {
		return fmt.Errorf("the canary is judged on route metrics: set route_metrics = true in [app.%s]", app)
	}
	return nil
}

// splitGen implements canaryEnv (see listen.Table.Split).
func (e managerEnv) splitGen(app string, oldID, newID int, share float64) error {
	return e.m.view(app).table.Split(oldID, newID, share)
}

// judgeGen implements canaryEnv: the route metrics' verdict with the app's
// limits (apm.App.JudgeCanary) and the exception groups first seen in newID
// (errinbox.Inbox.NewGroups).
func (e managerEnv) judgeGen(app string, oldID, newID int, from time.Time, limits config.CanaryLimits) reload.Judgement {
	v := e.m.routes.App(app).JudgeCanary(oldID, newID, from, limits)
	j := reload.Judgement{Worse: v.Worse, Final: v.Enough, Figures: v.Figures}
	if groups := e.m.errorInbox(app).NewGroups(newID); len(groups) > 0 {
		j.Worse, j.Final = append(j.Worse, groups...), true
	}
	return j
}

// errorInbox returns app's error inbox, nil for none.
func (m *Manager) errorInbox(app string) *errinbox.Inbox {
	if m.inbox == nil {
		return nil
	}
	return m.inbox(app)
}

// minWorkerDeaths is how many workers of the canary generation must die
// in a step (timeouts, kills), while none of the old one's do, for the
// canary to be worse.
const minWorkerDeaths = 2

// canaryHost is the reload.CanaryHost of one canary reload.
type canaryHost struct {
	*host
	env  canaryEnv
	plan strategy.Canary
	// base is the worker deaths of the old and the canary generation at
	// the step's split.
	base [2]uint64
}

// Split steers share to g and takes the worker deaths of both
// generations as the step's base.
func (h *canaryHost) Split(old, g reload.Gen, share float64) error {
	app, oldID, newID := h.a.cfg.Name, asGen(old).Info().ID, asGen(g).Info().ID
	h.base = [2]uint64{h.env.workerDeaths(app, oldID), h.env.workerDeaths(app, newID)}
	return h.env.splitGen(app, oldID, newID, share)
}

// Judge is the route metrics' and the error inbox's judgement (judgeGen)
// plus the worker deaths since the step's split.
func (h *canaryHost) Judge(old, g reload.Gen, from time.Time) reload.Judgement {
	app, oldID, newID := h.a.cfg.Name, asGen(old).Info().ID, asGen(g).Info().ID
	j := h.env.judgeGen(app, oldID, newID, from, h.run.canaryLimits)
	deaths := [2]uint64{h.env.workerDeaths(app, oldID), h.env.workerDeaths(app, newID)}
	oldDied, newDied := deaths[0]-h.base[0], deaths[1]-h.base[1]
	if newDied >= minWorkerDeaths && oldDied == 0 {
		j.Worse = append(j.Worse, fmt.Sprintf("%d workers died (timeout or signal), none of the old generation's", newDied))
		j.Final = true
	}
	return j
}

func (h *canaryHost) Judged(share float64, began time.Time, j reload.Judgement) {
	id := 0
	if fresh := h.run.gens(); len(fresh) > 1 {
		id = fresh[len(fresh)-1].Info().ID
	}
	h.env.canaryView(h.a.cfg.Name).Set(id, h.plan, share, began, j)
}

// canaryRefusal says why app cannot run plan with strategy st (nil: it can).
func (a *appOwner) canaryRefusal(st strategy.Strategy) (canaryEnv, error) {
	if err := st.CanCanary(); err != nil {
		return nil, fmt.Errorf("app %s: %w", a.cfg.Name, err)
	}
	env, ok := a.env.(canaryEnv)
	if !ok {
		return nil, fmt.Errorf("app %s: canaries are not available here", a.cfg.Name)
	}
	if err := env.canSplit(a.cfg.Name); err != nil {
		return nil, fmt.Errorf("app %s: --canary: %w", a.cfg.Name, err)
	}
	return env, nil
}

// runSteps runs the reload of h's run: a canary (reload.Canary) when its
// plan is on, the strategy's steps (reload.Run) otherwise.
func runSteps(ctx context.Context, st strategy.Strategy, h *host, old generation, progress reload.Progress) (reload.Gen, error) {
	if !h.run.canary.On() {
		return reload.Run(ctx, st, h, old, progress)
	}
	ch := &canaryHost{host: h, env: h.run.canaryEnv, plan: h.run.canary}
	return reload.Canary(ctx, ch, old, h.run.canary, progress)
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
