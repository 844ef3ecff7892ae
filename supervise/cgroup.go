package supervise

import (
	"time"

	"github.com/gunisup/supervisor/proc"
)

// openCgroups creates one cgroup per app under cg (nil: none, the
// supervisor tracks processes by process group and as child subreaper). An
// app whose cgroup cannot be created runs without one (logged).
func (m *Manager) openCgroups(cg *proc.Cgroups) {
	m.cgroups = map[string]*proc.Cgroup{}
	if cg == nil {
		return
	}
	for _, app := range m.cfg.Apps {
		g, err := cg.App(app.Name)
		if err != nil {
			m.logger.Warn("app runs without a cgroup", "app", app.Name, "err", err)
			continue
		}
		m.cgroups[app.Name] = g
	}
}

// cgroupFD is the descriptor of app's cgroup for proc.Spec.Cgroup (0: none).
func (m *Manager) cgroupFD(app string) int {
	if g := m.cgroups[app]; g != nil {
		return g.FD()
	}
	return 0
}

// killCgroup ends whatever is left in app's cgroup once the app stopped:
// processes that left the app's process group (setsid daemons, double
// forks). Without a cgroup it does nothing; the supervisor ends such
// processes when it stops (they re-parent to it as child subreaper).
func (m *Manager) killCgroup(app string) {
	g := m.cgroups[app]
	if g == nil {
		return
	}
	if left := g.Procs(); len(left) > 0 {
		m.logger.Info("ending the processes left in the app's cgroup", "app", app, "pids", left)
	}
	if err := g.Kill(5 * time.Second); err != nil {
		m.logger.Error("stop", "app", app, "err", err)
	}
}

// processCount is the number of app's processes: its cgroup's, or (without
// one) the tree rooted at its main process, which misses processes that
// re-parented away from it. 0 when nothing runs.
func (m *Manager) processCount(app string, mainPID int, tree *proc.Tree) int {
	if g := m.cgroups[app]; g != nil {
		return len(g.Procs())
	}
	if mainPID == 0 || tree == nil {
		return 0
	}
	if _, ok := tree.Stat(mainPID); !ok {
		return 0
	}
	return 1 + len(tree.Descendants(mainPID))
}
