package daemon

import (
	"fmt"
	"sync"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/errinbox"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/supervise"
)

// inboxes holds each app's error inbox, one per app log the Manager opens
// (supervise.Options.WatchLog); safe for concurrent use.
type inboxes struct {
	mu sync.Mutex
	by map[string]*errinbox.Inbox
}

// watch starts app's inbox on l, replacing the inbox of a log the app had
// before (that one ends when its log closes).
func (s *inboxes) watch(app string, l *logs.App) {
	in := errinbox.Watch(l, errinbox.Options{})
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.by == nil {
		s.by = map[string]*errinbox.Inbox{}
	}
	s.by[app] = in
}

// get returns app's inbox, nil when none was opened.
func (s *inboxes) get(app string) *errinbox.Inbox {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.by[app]
}

// counts returns the counters of the apps of m's configuration (an app an
// update removed is left out), keyed by app name; none before m exists.
func (s *inboxes) counts(m *supervise.Manager) map[string]errinbox.Counts {
	if m == nil {
		return nil
	}
	out := map[string]errinbox.Counts{}
	for _, app := range m.Config().Apps {
		if in := s.get(app.Name); in != nil {
			out[app.Name] = in.Counts()
		}
	}
	return out
}

// errorInbox implements control.ErrorInbox from the daemon's inboxes.
type errorInbox struct{ in *inboxes }

// AppErrors implements control.ErrorInbox; an app without an inbox is
// not_found.
func (e errorInbox) AppErrors(name string) (control.AppErrors, error) {
	in := e.in.get(name)
	if in == nil {
		return control.AppErrors{}, wireError(fmt.Errorf("%w: %q", supervise.ErrNoSuchApp, name))
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
	return s.inboxes.counts(m)
}
