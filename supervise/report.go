package supervise

import (
	"errors"
	"fmt"
	"slices"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/status"
)

// Published returns a copy of every app's last published snapshot, in
// file order, without reading /proc: WorkerPIDs and Processes are empty
// (Snapshots fills them with a scan of every process). For frequent
// readers such as `supctl top`.
func (m *Manager) Published() []status.AppSnapshot {
	owners := m.owners()
	out := make([]status.AppSnapshot, len(owners))
	for i, a := range owners {
		out[i] = *a.snap.Load()
	}
	return out
}

// Snapshots returns Published with what it leaves out filled in: worker
// PIDs read from /proc in one scan, the processes each app runs, its
// worker counts, canary comparison, the log lines it dropped, and the
// traceback of an unexpected exit while it is not running.
func (m *Manager) Snapshots() []status.AppSnapshot {
	tree, _ := proc.NewTree("") // without /proc, worker lists stay empty
	out := m.Published()
	for i := range out {
		s := &out[i]
		if s.MasterPID != 0 && tree != nil {
			s.WorkerPIDs = slices.Sorted(slices.Values(tree.LiveChildren(s.MasterPID)))
		}
		sl, v := m.slot(s.Name), m.view(s.Name)
		s.Processes = m.homes.Count(s.Name, v.cgroup, s.MasterPID, tree)
		s.WorkersTarget, s.WorkersRecycled = sl.workers.Target(), sl.workers.Recycled()
		s.Comparison = joinLines(sl.canary.Status(), m.routes.Comparison(s.Name))
		if v.log != nil {
			s.LogDropped = v.log.Dropped()
			if s.State != status.Running && s.State != status.Stopping {
				s.Traceback, _ = gunicorn.Traceback(v.log.CrashTail(gen.TracebackScan))
			}
		}
	}
	return out
}

// Readiness assesses the apps' snapshots (see status.Assess); nothing counts as
// started before Start has asked every app to start.
func (m *Manager) Readiness() status.Readiness {
	r := status.Assess(m.Snapshots())
	r.Started = r.Started && m.booted.Load()
	return r
}

// Log returns app name's log, for reading its recent lines and following
// it (`supctl logs`).
func (m *Manager) Log(name string) (*logs.App, error) {
	l := m.view(name).log
	if l == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchApp, name)
	}
	return l.App, nil
}

// ReopenLog reopens app name's log file (after an external logrotate moved
// it; nothing to do for other sinks) and sends USR1 to its running Gunicorn
// master, which reopens Gunicorn's own log files. It returns every error
// met, joined; ErrNoSuchApp for an app the configuration does not have.
func (m *Manager) ReopenLog(name string) error {
	v := m.view(name)
	if v.log == nil {
		return fmt.Errorf("%w: %q", ErrNoSuchApp, name)
	}
	err := v.log.Reopen()
	if v.owner == nil {
		return errors.Join(err, fmt.Errorf("%w: %q", ErrNoSuchApp, name))
	}
	if s := v.owner.snap.Load(); v.owner.cfg.Kind == config.KindGunicorn && s.State == status.Running && s.MasterPID > 0 {
		if gerr := gunicorn.ReopenLogs(s.MasterPID); gerr != nil {
			err = errors.Join(err, fmt.Errorf("app %s: %w", name, gerr))
		}
	}
	return err
}

// ReopenLogs is ReopenLog for every app: what SIGUSR1 to the supervisor
// does after an external logrotate. It returns every app's error, joined.
func (m *Manager) ReopenLogs() error {
	var errs []error
	for _, a := range m.owners() {
		errs = append(errs, m.ReopenLog(a.cfg.Name))
	}
	return errors.Join(errs...)
}
