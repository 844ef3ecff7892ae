package supervise

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gen"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/status"
)

// logCloseLimit bounds how long a stopping Manager waits for its apps'
// captures to finish and their sinks to take the last lines.
const logCloseLimit = 5 * time.Second

// logReport fills the log parts of a snapshot: lines dropped, and the
// traceback of an unexpected exit while the app is not running.
func (m *Manager) logReport(s *status.AppSnapshot) {
	l := m.view(s.Name).log
	if l == nil {
		return
	}
	s.LogDropped = l.Dropped()
	crashed := l.Crashed()
	if crashed == 0 || s.State == status.Running || s.State == status.Stopping {
		return
	}
	s.Traceback, _ = gunicorn.Traceback(logs.Texts(l.Lines(logs.Query{Gen: crashed, Stream: logs.Stderr, N: gen.TracebackScan})))
}

// Log returns app name's log, for reading its recent lines and following
// it (`supctl logs`).
func (m *Manager) Log(name string) (*logs.App, error) {
	l := m.view(name).log
	ok := l != nil
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchApp, name)
	}
	return l.App, nil
}

// ReopenLog reopens app name's log file (after an external logrotate moved
// it; nothing to do for other sinks) and sends USR1 to its running Gunicorn
// master, which reopens Gunicorn's own log files.
func (m *Manager) ReopenLog(name string) error {
	l := m.view(name).log
	ok := l != nil
	if !ok {
		return fmt.Errorf("%w: %q", ErrNoSuchApp, name)
	}
	var errs []error
	if err := l.Reopen(); err != nil {
		errs = append(errs, err)
	}
	a, err := m.owner(name)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	if s := a.snap.Load(); a.cfg.Kind == config.KindGunicorn && s.State == status.Running && s.MasterPID > 0 {
		if err := unix.Kill(s.MasterPID, unix.SIGUSR1); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("app %s: USR1 to master %d: %w", name, s.MasterPID, err))
		}
	}
	return errors.Join(errs...)
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
