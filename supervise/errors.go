package supervise

import (
	"fmt"

	"github.com/gunisup/supervisor/errinbox"
)

// Errors returns app name's error inbox: the tracebacks its stderr carried,
// grouped, and its workers' timeouts and kills.
func (m *Manager) Errors(name string) (*errinbox.Inbox, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.apps[name]
	if s == nil || s.errs == nil {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchApp, name)
	}
	return s.errs, nil
}

// ErrorCounts returns the inbox counters of the apps the configuration
// holds (an app removed by an update is left out), keyed by app name.
func (m *Manager) ErrorCounts() map[string]errinbox.Counts {
	out := map[string]errinbox.Counts{}
	for _, a := range m.owners() {
		name := a.snap.Load().Name
		if in, err := m.Errors(name); err == nil {
			out[name] = in.Counts()
		}
	}
	return out
}
