package status

import "fmt"

// State is an app's lifecycle state, owned by the app's goroutine.
type State int

const (
	// Stopped: not running and not meant to run (never started, stopped by
	// request, or exited under restart=never / a clean exit under on-failure).
	Stopped State = iota
	// Starting: a generation was spawned and is not yet ready.
	Starting
	// Running: a generation is ready and serving.
	Running
	// Backoff: the last generation exited; a restart is scheduled.
	Backoff
	// Stopping: a stop was requested and the generation is draining.
	Stopping
	// Failed: crash-looping (more exits than the limit inside the window).
	// Unlike supervisord's FATAL, a failed app is still retried at the capped interval.
	Failed
)

// States lists every State, for metrics that export one series per state.
var States = []State{Stopped, Starting, Running, Backoff, Stopping, Failed}

// String returns the state's name as supctl, /v1 and the metrics labels
// show it ("stopped", "starting", "running", "backoff", "stopping",
// "failed"), or "unknown" for a value outside States.
func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Starting:
		return "starting"
	case Running:
		return "running"
	case Backoff:
		return "backoff"
	case Stopping:
		return "stopping"
	case Failed:
		return "failed"
	}
	return "unknown"
}

// MarshalText returns String's name, so that states read as names in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText parses a state name written by MarshalText; any other text
// is an error naming it, and s is left unchanged.
func (s *State) UnmarshalText(b []byte) error {
	for _, st := range States {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}
