package contain

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/proc"
)

// EndDetached ends, with SIGKILL, the processes of generation id of app
// (home h, process group pgid) that left its process group (setsid
// daemons, double forks), and returns once they are gone (within Limit,
// else it logs the survivors). Call it when the generation is the only one
// in its home; its process group is left to its stop.
func (hs *Homes) EndDetached(app string, id, pgid int, h Home) {
	list := func() []int {
		var out []int
		for _, pid := range hs.procs(app, h) {
			if st, err := proc.ReadStat(pid); err == nil && st.PGRP != pgid {
				out = append(out, pid)
			}
		}
		return out
	}
	left := list()
	if len(left) == 0 {
		return
	}
	hs.Logger.Info("ending the processes the finished generation detached", "app", app, "generation", id, "pids", left)
	deadline := time.Now().Add(Limit)
	for ; len(left) > 0 && time.Now().Before(deadline); left = list() {
		for _, pid := range left {
			_ = unix.Kill(pid, unix.SIGKILL) // ESRCH: gone meanwhile
		}
		time.Sleep(5 * time.Millisecond) // poll interval: a killed stray leaves once reaped
	}
	if len(left) > 0 {
		hs.Logger.Error("processes of a finished generation survived SIGKILL", "app", app, "generation", id, "pids", left)
	}
}

// procs lists the live processes of home h of app: its leaf cgroup's,
// or every process that no generation is and that carries the app's and
// h's marks. The mark names this supervisor run (see New), so it is
// matched on every process, not on the supervisor's descendants alone: a
// daemon whose parent exits during the scan, on its way to being
// re-parented, is found all the same.
func (hs *Homes) procs(app string, h Home) []int {
	if h.Cgroup != "" {
		return proc.CgroupProcs(h.Cgroup)
	}
	if h.Mark == "" {
		return nil
	}
	t, err := proc.Scan("")
	if err != nil {
		return nil
	}
	appMark, genMark := AppMarkVar+"="+app, GenMarkVar+"="+h.Mark
	self := os.Getpid()
	var out []int
	for _, pid := range t.All() {
		if pid == self {
			continue
		}
		if !hs.Managed(pid) && proc.HasEnv(pid, appMark) && proc.HasEnv(pid, genMark) {
			out = append(out, pid)
		}
	}
	return out
}

// Close ends what is left in home h of app (its leaf's processes with
// SIGKILL, or its marked strays with SIGTERM then SIGKILL) and removes the
// leaf cgroup; failures are logged.
func (hs *Homes) Close(app string, h Home) {
	var err error
	switch {
	case h.Cgroup != "":
		err = proc.RemoveCgroup(h.Cgroup, Limit)
	case h.Mark != "":
		list := func() []int { return hs.procs(app, h) }
		if left := proc.Terminate(list, Limit, 50*time.Millisecond); len(left) > 0 {
			err = fmt.Errorf("processes %v survived SIGKILL", left)
		}
	}
	if err != nil {
		hs.Logger.Error("ending a finished generation", "app", app, "err", err)
	}
}

// EndApp ends whatever of app is left once it stopped: processes that
// left its process group (setsid daemons, double forks). With a cgroup
// (cg), the processes of the app's cgroup and its generations' leaves
// (SIGKILL; the leaves are removed); without, the supervisor's children
// that are not managed and carry the app's mark (SIGTERM, then SIGKILL to
// their trees after 5 s): a daemon whose parent is still alive, or that
// replaced its environment, is missed then.
func (hs *Homes) EndApp(app string, cg *proc.Cgroup) {
	if cg != nil {
		if left := cg.Procs(); len(left) > 0 {
			hs.Logger.Info("ending the processes left in the app's cgroup", "app", app, "pids", left)
		}
		if err := cg.Clear(Limit); err != nil {
			hs.Logger.Error("stop", "app", app, "err", err)
		}
		return
	}
	list := func() []int { return hs.strays(app) }
	if left := list(); len(left) > 0 {
		hs.Logger.Info("ending the app's processes re-parented to the supervisor", "app", app, "pids", left)
	}
	if left := proc.Terminate(list, Limit, 50*time.Millisecond); len(left) > 0 {
		hs.Logger.Error("stop: processes survived SIGKILL", "app", app, "pids", left)
	}
}

// strays returns the supervisor's children that no generation is and that
// carry app's mark (see AppMarkVar).
func (hs *Homes) strays(app string) []int {
	mark := AppMarkVar + "=" + app
	return proc.OwnChildren(func(pid, _ int) bool {
		return !hs.Managed(pid) && proc.HasEnv(pid, mark)
	})
}

// Count is the number of app's processes: those of its cgroup cg and its
// generations' leaves, or (cg nil) the trees in tree rooted at its main
// process mainPID and at its strays (see strays). 0 when nothing runs.
func (hs *Homes) Count(app string, cg *proc.Cgroup, mainPID int, tree *proc.Tree) int {
	if cg != nil {
		return len(cg.Procs())
	}
	if tree == nil {
		return 0
	}
	roots := hs.strays(app)
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
