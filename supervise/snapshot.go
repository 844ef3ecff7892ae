package supervise

import (
	"fmt"
	"time"

	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
)

// State is an app's lifecycle state, owned by the app's goroutine.
type State int

const (
	// StateStopped: not running and not meant to run (never started, stopped by
	// request, or exited under restart=never / a clean exit under on-failure).
	StateStopped State = iota
	// StateStarting: a generation was spawned and is not yet ready.
	StateStarting
	// StateRunning: a generation is ready and serving.
	StateRunning
	// StateBackoff: the last generation exited; a restart is scheduled.
	StateBackoff
	// StateStopping: a stop was requested and the generation is draining.
	StateStopping
	// StateFailed: crash-looping (more exits than the limit inside the window).
	// Unlike supervisord's FATAL, a failed app is still retried at the capped interval.
	StateFailed
)

// States lists every State, for metrics that export one series per state.
var States = []State{StateStopped, StateStarting, StateRunning, StateBackoff, StateStopping, StateFailed}

func (s State) String() string {
	switch s {
	case StateStopped:
		return "stopped"
	case StateStarting:
		return "starting"
	case StateRunning:
		return "running"
	case StateBackoff:
		return "backoff"
	case StateStopping:
		return "stopping"
	case StateFailed:
		return "failed"
	}
	return "unknown"
}

// MarshalText makes states readable in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// ExitInfo describes how a process ended (see proc.ExitInfo).
type ExitInfo = proc.ExitInfo

// ListenerSnapshot describes one held socket. Its fields mean what the
// fields of the same name in control.Listener (the wire type) say; FD is
// the supervisor's own descriptor, for queue metrics.
type ListenerSnapshot struct {
	Address, Bound, Network string
	FD, Backlog             int
	Steering                string
	Closed                  bool
}

// ReloadResult is the outcome of the last reload of an app.
type ReloadResult = reload.Result

// AppSnapshot is a consistent copy of one app's state, taken by its owner
// goroutine. Readers (control API, metrics) never see the live state. Its
// fields mean what the fields of the same name in control.AppStatus (the
// wire type, documented there) say.
type AppSnapshot struct {
	Name, Kind, Release, StatsdAddr, Message string
	State                                    State
	Healthy, HealthChecked, Reloading        bool
	StatsdBridge, Required, Wanted           bool
	Attempted                                bool
	MasterPID, Processes, Generation         int
	Restarts                                 int
	WorkerPIDs                               []int
	Started, NextRestart                     time.Time
	Backoff                                  time.Duration
	LastExit                                 *ExitInfo
	Listeners                                []ListenerSnapshot
	LastReload                               *ReloadResult
	Reloads                                  map[string]int
	Traceback                                []string
	LogDropped                               uint64
	// WorkersTarget is the worker target of an app with a workers range
	// (0: none); WorkersRecycled counts workers sent TERM for their
	// memory (max_worker_rss) since the supervisor started.
	WorkersTarget   int
	WorkersRecycled uint64
	// Comparison is the last reload's comparison line (see control.AppStatus).
	Comparison string
	// Kept is the generation kept for a rollback (nil: none).
	Kept *KeptSnapshot
}

// UnmarshalText parses a state name written by MarshalText.
func (s *State) UnmarshalText(b []byte) error {
	for _, st := range States {
		if st.String() == string(b) {
			*s = st
			return nil
		}
	}
	return fmt.Errorf("unknown state %q", b)
}

// listenerSnapshot describes a held socket for status and metrics.
func listenerSnapshot(s *listen.Socket) ListenerSnapshot {
	fd := s.FD()
	if fd < 0 {
		return ListenerSnapshot{Address: s.Spec.Raw, Bound: s.Bound, FD: -1, Network: s.Spec.Network.String(), Backlog: s.Spec.Backlog, Closed: true}
	}
	return ListenerSnapshot{Address: s.Spec.Raw, Bound: s.Bound, FD: fd, Network: s.Network(), Backlog: s.Spec.Backlog}
}
