package daemon

import (
	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/errinbox"
)

// AppErrors implements control.ErrorInbox from the app's error inbox.
func (b backend) AppErrors(name string) (control.AppErrors, error) {
	in, err := b.m.Errors(name)
	if err != nil {
		return control.AppErrors{}, wireError(err)
	}
	return wireErrors(name, in.Groups(), in.Counts()), nil
}

// wireErrors translates an inbox's groups and counters into the API's.
func wireErrors(name string, groups []errinbox.Group, c errinbox.Counts) control.AppErrors {
	out := control.AppErrors{Name: name, Groups: make([]control.ErrorGroup, len(groups)),
		WorkerTimeouts: c.WorkerTimeouts, WorkerKilled: c.WorkerKilled, DroppedLines: c.Dropped}
	for i, g := range groups {
		out.Groups[i] = control.ErrorGroup{Fingerprint: g.Fingerprint, Exception: g.Exception, Message: g.Message,
			Where: g.Where, Count: g.Count, FirstSeen: g.FirstSeen, LastSeen: g.LastSeen, Generation: g.Generation,
			Traceback: g.Traceback}
	}
	return out
}

// ErrorCounts implements metrics.ErrorSource (none before the manager
// exists).
func (s *lateSource) ErrorCounts() map[string]errinbox.Counts {
	s.mu.Lock()
	m := s.m
	s.mu.Unlock()
	if m == nil {
		return nil
	}
	return m.ErrorCounts()
}
