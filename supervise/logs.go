package supervise

import (
	"errors"
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/status"
)

// logCloseLimit bounds how long a stopping Manager waits for its apps'
// captures to finish and their sinks to take the last lines.
const logCloseLimit = 5 * time.Second

// logReport fills the log parts of s from l, its app's log (nil: none):
// lines dropped, and the traceback of an unexpected exit while the app is
// not running.
func logReport(s *status.AppSnapshot, l *logs.AppLog) {
	if l != nil {
		s.LogDropped = l.Dropped()
		if s.State != status.Running && s.State != status.Stopping {
			s.Traceback, _ = gunicorn.Traceback(l.CrashTail(gen.TracebackScan))
		}
	}
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
