package supervise

import (
	"time"

	"github.com/gunisup/supervisor/proc"
)

// appMarkVar names, in the environment of the processes of an app that has
// no cgroup, the app they belong to: a daemon that left the app's process
// tree and group and re-parented to the supervisor (child subreaper, or PID
// 1) is found by it.
const appMarkVar = "GUNISUP_APP"

// cgroupOf returns app's cgroup, or nil when it runs without one.
func (m *Manager) cgroupOf(app string) *proc.Cgroup {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.cgroups[app]
}

// cgroupFD is the descriptor of app's cgroup for proc.Spec.Cgroup (0: none).
func (m *Manager) cgroupFD(app string) int {
	if g := m.cgroupOf(app); g != nil {
		return g.FD()
	}
	return 0
}

// markApp adds the app mark (appMarkVar) to the environment of a process
// of an app without a cgroup.
func (m *Manager) markApp(app string, spec *proc.Spec) {
	if m.cgroupOf(app) == nil {
		spec.Env = append(spec.Env, appMarkVar+"="+app)
	}
}

// endStrays ends whatever of app is left once it stopped: processes that
// left its process group (setsid daemons, double forks). With a cgroup, the
// cgroup's processes (SIGKILL); without, the supervisor's children that are
// not managed and carry the app's mark (SIGTERM, then SIGKILL to their
// trees after 5 s): a daemon whose parent is still alive, or that replaced
// its environment, is missed then.
func (m *Manager) endStrays(app string) {
	if g := m.cgroupOf(app); g != nil {
		if left := g.Procs(); len(left) > 0 {
			m.logger.Info("ending the processes left in the app's cgroup", "app", app, "pids", left)
		}
		if err := g.Kill(5 * time.Second); err != nil {
			m.logger.Error("stop", "app", app, "err", err)
		}
		return
	}
	list := func() []int { return m.strays(app) }
	if left := list(); len(left) > 0 {
		m.logger.Info("ending the app's processes re-parented to the supervisor", "app", app, "pids", left)
	}
	if left := proc.Terminate(list, 5*time.Second, 50*time.Millisecond); len(left) > 0 {
		m.logger.Error("stop: processes survived SIGKILL", "app", app, "pids", left)
	}
}

// strays returns the supervisor's children that no generation is and that
// carry app's mark (see appMarkVar).
func (m *Manager) strays(app string) []int {
	mark := appMarkVar + "=" + app
	return proc.OwnChildren(func(pid, _ int) bool {
		return !m.reaper.Managed(pid) && proc.HasEnv(pid, mark)
	})
}

// processCount is the number of app's processes: its cgroup's, or (without
// one) the trees rooted at its main process and at its strays (see
// strays). 0 when nothing runs.
func (m *Manager) processCount(app string, mainPID int, tree *proc.Tree) int {
	if g := m.cgroupOf(app); g != nil {
		return len(g.Procs())
	}
	if tree == nil {
		return 0
	}
	roots := m.strays(app)
	if mainPID != 0 {
		roots = append(roots, mainPID)
	}
	n := 0
	for _, pid := range roots {
		if _, ok := tree.Stat(pid); ok {
			n += 1 + len(tree.Descendants(pid))
		}
	}
	return n
}
