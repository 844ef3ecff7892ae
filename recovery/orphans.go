package recovery

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/listen/steer"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
)

// Orphans are the processes a dead predecessor supervised, found through
// its run_dir/state.json: by process group (with the leader's start time,
// so a reused pid is not mistaken for an app) and by cgroup. They are not
// the supervisor's children: they are watched through /proc, never waited for.
type Orphans struct {
	// Prev is the predecessor's record (the base of the first RunState).
	Prev   *RunState
	apps   map[string]AppRun
	logger *slog.Logger
	// adopted names the apps whose serving orphans a successor tracks as a
	// generation (see Adopt).
	adopted map[string]bool
	// taken names the apps whose sockets TakeSockets copied.
	taken map[string]bool
	// runDir holds the record and the apps' pidfiles.
	runDir string
}

// FindOrphans reads run_dir's state.json and returns the predecessor's
// apps that still have processes. It returns nil and no error when there is
// no record, when this process wrote it (a self-upgrade's image), or when
// nothing of it is alive; an error when the supervisor that wrote it still
// runs (two supervisors on one run_dir).
func FindOrphans(runDir string, logger *slog.Logger) (*Orphans, error) {
	prev, err := ReadRunState(runDir)
	if err != nil || prev == nil || prev.PID == os.Getpid() {
		return nil, err
	}
	if started, err := proc.StartTime(prev.PID); err == nil && started == prev.Started && proc.Alive(prev.PID) {
		return nil, fmt.Errorf("supervisor %d, which wrote %s, still runs", prev.PID, filepath.Join(runDir, RunStateFile))
	}
	o := &Orphans{Prev: prev, apps: map[string]AppRun{}, logger: logger, adopted: map[string]bool{}, taken: map[string]bool{}, runDir: runDir}
	for name, run := range prev.Apps {
		if run.Serving != nil && len(o.servingMembers(run)) == 0 {
			run.Serving = nil // the serving generation is gone: nothing to adopt
		}
		if len(o.members(run)) > 0 {
			o.apps[name] = run
			continue
		}
		removeCgroups(run.Cgroups, time.Second, logger)
	}
	if len(o.apps) == 0 {
		return nil, nil
	}
	return o, nil
}

// Apps names the apps that have orphans, sorted.
func (o *Orphans) Apps() []string {
	var out []string
	for name := range o.apps {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// members returns the live processes of run: its groups' members and its
// cgroups' processes, masters (group leaders) first.
func (o *Orphans) members(run AppRun) []int {
	tree, err := proc.Scan("")
	if err != nil {
		return nil
	}
	var leaders, rest []int
	seen := map[int]bool{}
	add := func(pid int) {
		if seen[pid] || pid == os.Getpid() {
			return
		}
		seen[pid] = true
		if s, ok := tree.Stat(pid); ok && s.PGRP == pid {
			leaders = append(leaders, pid)
		} else {
			rest = append(rest, pid)
		}
	}
	for _, g := range run.Groups {
		for _, pid := range GroupMembers(tree, g) {
			add(pid)
		}
	}
	for _, c := range run.Cgroups {
		for _, pid := range proc.CgroupProcs(c) {
			add(pid)
		}
	}
	return append(leaders, rest...)
}

// TakeSockets copies the listening sockets of the orphans of every app of
// cfg that has all its bound (not systemd) listeners among them: found by
// the address the predecessor recorded, in one of the orphans' descriptor
// tables (pidfd_getfd). An app missing any listener gets none; its orphans
// must be drained before it binds (see Drain). Apps in held are skipped.
func (o *Orphans) TakeSockets(cfg *config.Config, held map[string][]*listen.Socket) map[string][]*listen.Socket {
	out := map[string][]*listen.Socket{}
	for _, app := range cfg.Apps {
		run, ok := o.apps[app.Name]
		if _, systemd := held[app.Name]; !ok || systemd || len(app.Listen) == 0 {
			continue
		}
		socks, err := o.takeApp(app, run)
		if err != nil {
			o.logger.Warn("recovery: cannot take over the orphans' sockets; they are stopped before binding", "app", app.Name, "err", err)
			continue
		}
		o.logger.Info("recovery: took over the listening sockets of the previous supervisor's processes", "app", app.Name, "sockets", len(socks))
		out[app.Name] = socks
		o.taken[app.Name] = true
	}
	return out
}

// takeApp returns app's listeners copied from its orphans, in listen order.
func (o *Orphans) takeApp(app *config.App, run AppRun) ([]*listen.Socket, error) {
	want := map[string]config.Listener{} // bound name -> listener
	for _, l := range app.Listen {
		name, err := recordedName(l, run.Listeners)
		if err != nil {
			return nil, err
		}
		want[name] = l
	}
	found := map[string]int{}
	// The serving generation's socket is the one clients reach (BPF
	// steering sends them there): it is looked for first.
	for _, pid := range append(o.servingMembers(run), o.members(run)...) {
		// The descriptors taken are those the filter kept: found has them.
		_, err := proc.TakeSockets(pid, func(fd int) bool {
			name, err := listen.BoundName(fd)
			_, wanted := want[name]
			_, dup := found[name]
			acc, aerr := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
			if err == nil && wanted && !dup && aerr == nil && acc == 1 {
				found[name] = fd
				return true
			}
			return false
		})
		if err != nil {
			o.logger.Debug("recovery: descriptors of an orphan", "pid", pid, "err", err)
		}
		if len(found) == len(want) {
			break
		}
	}
	return adoptFound(app, want, found)
}

// recordedName is the name l's socket reports (getsockname) in the
// predecessor's processes: the recorded bound address of a TCP listener,
// the recorded hidden name of a Unix one (see listen.Socket), by default
// its ".held" name.
func recordedName(l config.Listener, recorded []RunListener) (string, error) {
	switch l.Network {
	case config.NetUnix:
		for _, r := range recorded {
			if r.Address == l.Raw && r.Hold != "" {
				return r.Hold, nil
			}
		}
		return l.HeldPath(), nil
	case config.NetTCP:
		for _, r := range recorded {
			if r.Address == l.Raw {
				return r.Bound, nil
			}
		}
		return "", fmt.Errorf("listen %s: not in the previous supervisor's record", l.Raw)
	}
	return "", fmt.Errorf("listen %s: %s sockets cannot be taken over", l.Raw, l.Network)
}

// adoptFound wraps the descriptors found for want as app's sockets, in
// listen order; when one is missing it closes them all.
func adoptFound(app *config.App, want map[string]config.Listener, found map[string]int) ([]*listen.Socket, error) {
	var errs []error
	var socks []*listen.Socket
	for name, l := range want {
		fd, ok := found[name]
		if !ok {
			errs = append(errs, fmt.Errorf("listen %s: no orphan holds %s", l.Raw, name))
			continue
		}
		s, err := adoptOne(l, fd, name)
		if err != nil {
			unix.Close(fd)
			errs = append(errs, err)
			continue
		}
		socks = append(socks, s)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, errors.Join(err, listen.CloseAll(socks))
	}
	order := func(s *listen.Socket) int {
		return slices.IndexFunc(app.Listen, func(l config.Listener) bool { return l.Raw == s.Spec.Raw })
	}
	sort.Slice(socks, func(i, j int) bool { return order(socks[i]) < order(socks[j]) })
	return socks, nil
}

// adoptOne wraps a taken descriptor: a Unix socket with its held name, its
// file identified by the inode its public path (or hidden name) has.
func adoptOne(l config.Listener, fd int, name string) (*listen.Socket, error) {
	if l.Network != config.NetUnix {
		return listen.AdoptFD(l, fd, false)
	}
	var st unix.Stat_t
	if err := unix.Lstat(l.Address, &st); err != nil {
		if err := unix.Lstat(name, &st); err != nil {
			return nil, fmt.Errorf("listen %s: neither %s nor %s exists: %w", l.Raw, l.Address, name, err)
		}
	}
	return listen.AdoptHeld(l, fd, st.Ino, name)
}

// Drain ends app's orphans: SIGTERM to each (a Gunicorn master stops
// gracefully), SIGKILL to what remains after grace, then removes the
// predecessor's cgroups of the app. It polls /proc (they are not children)
// and returns the survivors' error.
func (o *Orphans) Drain(app string, grace time.Duration) error {
	run, ok := o.apps[app]
	if !ok {
		return nil
	}
	list := func() []int { return o.members(run) }
	all := list()
	if len(all) > 0 {
		o.logger.Info("recovery: stopping the previous supervisor's processes", "app", app, "pids", all)
	}
	var errs []error
	if left := proc.Terminate(list, grace, 50*time.Millisecond); len(left) > 0 {
		errs = append(errs, fmt.Errorf("recovery: app %s: processes %v survived SIGKILL", app, left))
	}
	o.removePidfiles(app, all)
	if err := removeCgroups(run.Cgroups, grace, o.logger); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// removeCgroups removes a predecessor's app cgroups (killing what is left
// in them, within limit) and their parent once it is empty.
func removeCgroups(cgroups []string, limit time.Duration, logger *slog.Logger) error {
	var errs []error
	for _, c := range cgroups {
		errs = append(errs, proc.RemoveCgroup(c, limit))
		// The predecessor's directory goes with its last app's cgroup.
		if err := unix.Rmdir(filepath.Dir(c)); err == nil {
			logger.Debug("recovery: removed the previous supervisor's cgroups", "dir", filepath.Dir(c))
		}
	}
	return errors.Join(errs...)
}

// servingMembers returns the live processes of run's serving generation
// (its process group), master first; none when it is not recorded or its
// master is gone (or its pid reused).
func (o *Orphans) servingMembers(run AppRun) []int {
	if run.Serving == nil {
		return nil
	}
	g := run.Serving.Group
	if started, err := proc.StartTime(g.PGID); err != nil || started != g.Leader {
		return nil
	}
	tree, err := proc.Scan("")
	if err != nil {
		return nil
	}
	pids := GroupMembers(tree, g)
	slices.SortFunc(pids, func(a, b int) int {
		switch {
		case a == g.PGID:
			return -1
		case b == g.PGID:
			return 1
		}
		return a - b
	})
	return pids
}

// RestoreLinks points back the `directory` link of every app of cfg whose
// deploy the predecessor recorded as in progress, before anything starts:
// the release it pointed at never passed the gate. A link that points
// elsewhere than the deploy's target (moved since, or already pointed
// back), or a target that passed the gate, is left as it is.
func (o *Orphans) RestoreLinks(cfg *config.Config) {
	for name, run := range o.Prev.Apps {
		c, app := run.Change, cfg.App(name)
		if c == nil || !c.Deploy || app == nil || app.Directory != c.Link || c.Previous == "" {
			continue
		}
		if now, err := os.Readlink(c.Link); err != nil || now != c.Target {
			continue
		}
		if target, err := filepath.EvalSymlinks(c.Target); err == nil && target == run.Gated {
			continue
		}
		if _, err := reload.PointLink(c.Link, c.Previous); err != nil {
			o.logger.Error("recovery: cannot point the link back at the release before the unfinished deploy", "app", name, "link", c.Link, "release", c.Previous, "err", err)
			continue
		}
		o.logger.Warn("recovery: a deploy was in progress; pointed the link back at the release before it", "app", name, "link", c.Link, "release", c.Previous, "unchecked", c.Target)
	}
}

// Adoptable returns the serving generation of app's orphans that a
// successor can track (its master alive), and the release it recovers to:
// the last one that passed the gate, else the serving generation's.
func (o *Orphans) Adoptable(app string) (*RunGen, string, bool) {
	run, ok := o.apps[app]
	if !ok || run.Serving == nil {
		return nil, "", false
	}
	dir := run.Serving.Dir
	if run.Gated != "" {
		if st, err := os.Stat(run.Gated); err == nil && st.IsDir() {
			dir = run.Gated
		}
	}
	return run.Serving, dir, true
}

// Adopts reports whether a successor's app tracks its orphans' serving
// generation: one is recorded and alive (see Adoptable), and the app's
// sockets are held (held: taken from the orphans, or systemd's) unless it
// has no listener. False for nil o (no orphans).
func (o *Orphans) Adopts(app *config.App, held bool) bool {
	if o == nil {
		return false
	}
	_, _, ok := o.Adoptable(app.Name)
	return ok && (held || len(app.Listen) == 0)
}

// Adoption is what a successor tracks of an app's orphans: their serving
// generation (Gen), the release it recovers to (Dir, see Adoptable) and
// the release that last passed the gate in the predecessor's run (Gated,
// "" for none).
type Adoption struct {
	Gen   *Gen
	Dir   string
	Gated string
}

// Adopt returns app's serving orphan generation as a generation the
// successor tracks (see Gen) with the releases it recovers to, and records
// the app as adopted (its orphans are not drained by the successor's
// drain); false when there is none to adopt (see Adoptable). grace bounds
// the end of what its master leaves behind.
func (o *Orphans) Adopt(app string, grace time.Duration) (Adoption, bool) {
	serving, dir, ok := o.Adoptable(app)
	if !ok {
		return Adoption{}, false
	}
	run := o.apps[app]
	members := func() []int { return o.servingMembers(run) }
	cleanup := func() {
		if err := removeCgroups(run.Cgroups, grace, o.logger); err != nil {
			o.logger.Warn("recovery: the previous supervisor's cgroups", "app", app, "err", err)
		}
		o.removePidfiles(app, []int{serving.Group.PGID})
	}
	o.adopted[app] = true
	return Adoption{Gen: NewGen(app, *serving, members, grace, cleanup), Dir: dir, Gated: run.Gated}, true
}

// StopUnchecked stops, in the background, app's orphans outside its
// serving generation (a reload's generation that had not passed the gate,
// or one being drained): TERM, then KILL after grace. Apps whose serving
// generation is not known are left alone (see Drain).
func (o *Orphans) StopUnchecked(app string, grace time.Duration) {
	run, ok := o.apps[app]
	if !ok || run.Serving == nil {
		return
	}
	list := func() []int {
		serving := o.servingMembers(run)
		return slices.DeleteFunc(o.members(run), func(pid int) bool { return slices.Contains(serving, pid) })
	}
	pids := list()
	if len(pids) == 0 {
		return
	}
	o.logger.Info("recovery: stopping the previous supervisor's processes outside the serving generation", "app", app, "pids", pids)
	go func() {
		if left := proc.Terminate(list, grace, 100*time.Millisecond); len(left) > 0 {
			o.logger.Error("recovery: processes survived SIGKILL", "app", app, "pids", left)
		}
		o.removePidfiles(app, pids)
	}()
}

// Steering returns the BPF objects the predecessor recorded for app's
// listener raw, or nil.
func (o *Orphans) Steering(app, raw string) *steer.ObjectIDs {
	for _, l := range o.apps[app].Listeners {
		if l.Address == raw {
			return l.Steer
		}
	}
	return nil
}

// Took reports whether TakeSockets copied app's sockets (false for nil o).
func (o *Orphans) Took(app string) bool { return o != nil && o.taken[app] }

// removePidfiles removes app's pidfiles that name one of pids, the
// predecessor's processes that have exited: a master killed rather than
// stopped leaves its pidfile behind.
func (o *Orphans) removePidfiles(app string, pids []int) {
	if err := gunicorn.RemovePidfilesIn(config.AppRunDir(o.runDir, app), pids); err != nil {
		o.logger.Warn("recovery: pidfiles of the previous supervisor's processes", "app", app, "err", err)
	}
}

// Adopted reports whether Adopt gave app's serving generation to a
// successor: its orphans are not to be drained.
func (o *Orphans) Adopted(app string) bool { return o.adopted[app] }
