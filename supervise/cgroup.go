package supervise

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/proc"
)

// appMarkVar names, in the environment of the processes of an app that has
// no cgroup, the app they belong to: a daemon that left the app's process
// tree and group and re-parented to the supervisor (child subreaper, or PID
// 1) is found by it. genMarkVar names the generation they belong to (see
// genHome).
const (
	appMarkVar = "GUNISUP_APP"
	genMarkVar = "GUNISUP_GEN"
)

// strayKillLimit bounds the wait for a finished generation's strays to die
// after SIGKILL, and for its leaf cgroup to be removed.
const strayKillLimit = 5 * time.Second

// genHome is where a generation's strays are found: its leaf cgroup below
// the app's (cgroup), or, for an app without a cgroup, the value of
// genMarkVar in its processes' environment (mark). A usr2 successor shares
// its predecessor's home (it is forked by the old master and inherits its
// cgroup and environment): the home ends when the last generation in it
// ends, so the strays of a usr2 chain live until the chain's last
// generation ends (a stop, a restart, a swap or restart reload, a crash).
// The zero value is no home (a generation handed over by an image that ran
// it in the app's cgroup itself): its strays end with the app's stop.
type genHome struct {
	cgroup string
	mark   string
}

// key names the home in Manager.homes ("" for none).
func (h genHome) key() string {
	switch {
	case h.cgroup != "":
		return h.cgroup
	case h.mark != "":
		return genMarkVar + "=" + h.mark
	}
	return ""
}

// newHome makes the home of generation id of app: a fresh leaf cgroup
// "s<pid>.g<id>" below the app's cgroup, opened for CLONE_INTO_CGROUP (the
// caller closes it once the generation is forked), or, without a cgroup,
// the mark "s<pid>.g<id>". A cgroup that cgroup.kill was written to is never
// spawned into: the app's own cgroup is killed by a stop, a leaf when its
// generation ends. The supervisor's pid makes the name unique to this run
// (a self-upgrade keeps the pid and the numbering), as the pidfile's is: a
// killed predecessor's orphans, still serving in their own leaves and
// marked with their own run, are never taken for this run's generations.
func (m *Manager) newHome(app string, id int) (genHome, *proc.Cgroup, error) {
	name := homeName(os.Getpid(), id)
	cg := m.view(app).cgroup
	if cg == nil {
		return genHome{mark: name}, nil, nil
	}
	leaf, err := cg.Leaf(name)
	if err != nil {
		return genHome{}, nil, fmt.Errorf("app %s generation %d: %w", app, id, err)
	}
	return genHome{cgroup: leaf.Path}, leaf, nil
}

// enterHome counts one more live generation in h.
func (m *Manager) enterHome(h genHome) {
	if k := h.key(); k != "" {
		m.homesMu.Lock()
		m.homes[k]++
		m.homesMu.Unlock()
	}
}

// leaveHome counts g out of its home and reports whether it was the last
// generation there. Call it once per generation.
func (m *Manager) leaveHome(g *Generation) bool {
	k := g.home.key()
	if k == "" {
		return false
	}
	m.homesMu.Lock()
	defer m.homesMu.Unlock()
	m.homes[k]--
	if m.homes[k] > 0 {
		return false
	}
	delete(m.homes, k)
	return true
}

// sharesHome reports whether another live generation is in g's home (a
// usr2 pair).
func (m *Manager) sharesHome(g *Generation) bool {
	k := g.home.key()
	m.homesMu.Lock()
	defer m.homesMu.Unlock()
	return k != "" && m.homes[k] > 1
}

// endDetached ends the processes g detached (see endGenStrays) while its
// main process may still drain, unless g shares its home with a live
// generation: g is being retired, and what replaces it starts next.
func (m *Manager) endDetached(g *Generation) {
	if !m.sharesHome(g) {
		m.endGenStrays(g)
	}
}

// homeOfAdopted finds the home of a generation a previous image handed
// over: the leaf cgroup its main process is in (when that is a child of the
// app's cgroup), or its generation mark.
func (m *Manager) homeOfAdopted(app string, pid int) genHome {
	if cg := m.view(app).cgroup; cg != nil {
		if dir, err := proc.CgroupOf(pid); err == nil && filepath.Dir(dir) == cg.Path {
			return genHome{cgroup: dir}
		}
		return genHome{}
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return genHome{}
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, genMarkVar+"="); ok {
			return genHome{mark: v}
		}
	}
	return genHome{}
}

// markApp adds the app and generation marks (appMarkVar, genMarkVar) to the
// environment of a process of an app without a cgroup.
func (m *Manager) markApp(app string, h genHome, spec *proc.Spec) {
	if h.mark != "" {
		spec.Env = append(spec.Env, appMarkVar+"="+app, genMarkVar+"="+h.mark)
	}
}

// endGenStrays ends, with SIGKILL, the processes of g's home that left its
// process group (setsid daemons, double forks), and returns once they are
// gone (within strayKillLimit, else it logs the survivors). Call it when g
// is the only generation in its home (see genHome); g's process group is
// left to its stop and to endOrphans.
func (m *Manager) endGenStrays(g *Generation) {
	list := func() []int {
		var out []int
		for _, pid := range m.homeProcs(g.App, g.home) {
			if st, err := proc.ReadStat(pid); err == nil && st.PGRP != g.PGID {
				out = append(out, pid)
			}
		}
		return out
	}
	left := list()
	if len(left) == 0 {
		return
	}
	m.logger.Info("ending the processes the finished generation detached", "app", g.App, "generation", g.ID, "pids", left)
	deadline := time.Now().Add(strayKillLimit)
	for ; len(left) > 0 && time.Now().Before(deadline); left = list() {
		for _, pid := range left {
			_ = unix.Kill(pid, unix.SIGKILL) // ESRCH: gone meanwhile
		}
		time.Sleep(5 * time.Millisecond) // poll interval: a killed stray leaves once reaped
	}
	if len(left) > 0 {
		m.logger.Error("processes of a finished generation survived SIGKILL", "app", g.App, "generation", g.ID, "pids", left)
	}
}

// homeProcs lists the live processes of home h of app: its leaf cgroup's,
// or every process that no generation is and that carries the app's and
// h's marks. The mark names this supervisor run (see newHome), so it is
// matched on every process, not on the supervisor's descendants alone: a
// daemon whose parent exits during the scan, on its way to being
// re-parented, is found all the same.
func (m *Manager) homeProcs(app string, h genHome) []int {
	if h.cgroup != "" {
		return proc.CgroupProcs(h.cgroup)
	}
	if h.mark == "" {
		return nil
	}
	t, err := proc.Scan("")
	if err != nil {
		return nil
	}
	appMark, genMark := appMarkVar+"="+app, genMarkVar+"="+h.mark
	self := os.Getpid()
	var out []int
	for _, pid := range t.All() {
		if pid == self {
			continue
		}
		if !m.reaper.Managed(pid) && proc.HasEnv(pid, appMark) && proc.HasEnv(pid, genMark) {
			out = append(out, pid)
		}
	}
	return out
}

// closeHome ends what is left in home h of app (its leaf's processes with
// SIGKILL, or its marked strays with SIGTERM then SIGKILL) and removes the
// leaf cgroup; failures are logged.
func (m *Manager) closeHome(app string, h genHome) {
	var err error
	switch {
	case h.cgroup != "":
		err = proc.RemoveCgroup(h.cgroup, strayKillLimit)
	case h.mark != "":
		list := func() []int { return m.homeProcs(app, h) }
		if left := proc.Terminate(list, strayKillLimit, 50*time.Millisecond); len(left) > 0 {
			err = fmt.Errorf("processes %v survived SIGKILL", left)
		}
	}
	if err != nil {
		m.logger.Error("ending a finished generation", "app", app, "err", err)
	}
}

// endStrays ends whatever of app is left once it stopped: processes that
// left its process group (setsid daemons, double forks). With a cgroup, the
// processes of the app's cgroup and its generations' leaves (SIGKILL; the
// leaves are removed); without, the supervisor's children that are not
// managed and carry the app's mark (SIGTERM, then SIGKILL to their trees
// after 5 s): a daemon whose parent is still alive, or that replaced its
// environment, is missed then.
func (m *Manager) endStrays(app string) {
	if g := m.view(app).cgroup; g != nil {
		if left := g.Procs(); len(left) > 0 {
			m.logger.Info("ending the processes left in the app's cgroup", "app", app, "pids", left)
		}
		if err := g.Clear(strayKillLimit); err != nil {
			m.logger.Error("stop", "app", app, "err", err)
		}
		return
	}
	list := func() []int { return m.strays(app) }
	if left := list(); len(left) > 0 {
		m.logger.Info("ending the app's processes re-parented to the supervisor", "app", app, "pids", left)
	}
	if left := proc.Terminate(list, strayKillLimit, 50*time.Millisecond); len(left) > 0 {
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

// processCount is the number of app's processes: those of its cgroup and
// its generations' leaves, or (without a cgroup) the trees rooted at its
// main process and at its strays (see strays). 0 when nothing runs.
func (m *Manager) processCount(app string, mainPID int, tree *proc.Tree) int {
	if g := m.view(app).cgroup; g != nil {
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

// homeName is the leaf cgroup name and the mark of generation id of the
// supervisor run pid (see newHome).
func homeName(pid, id int) string {
	return "s" + strconv.Itoa(pid) + ".g" + strconv.Itoa(id)
}
