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

// ListenerSnapshot describes one held listener.
type ListenerSnapshot struct {
	// Address as written in the config ("tcp://127.0.0.1:8000").
	Address string `json:"address"`
	// Bound is the actual bound address (port resolved).
	Bound string `json:"bound"`
	// FD is the supervisor's own descriptor for the socket (for queue metrics).
	FD int `json:"-"`
	// Network is "tcp" or "unix".
	Network string `json:"network"`
	// Backlog is the listen(2) backlog.
	Backlog int `json:"backlog"`
	// Steering is how new connections reach the generations: "bpf" (each
	// has its own socket, the serving one is chosen by BPF) or "shared".
	Steering string `json:"steering"`
}

// ReloadResult is the outcome of the last reload of an app.
type ReloadResult = reload.Result

// AppSnapshot is a consistent copy of one app's state, taken by its owner
// goroutine. Readers (control API, metrics) never see the live state.
type AppSnapshot struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	State State  `json:"state"`
	// Healthy is the last health verdict (true when the app has no check and runs).
	Healthy bool `json:"healthy"`
	// HealthChecked is true when the app has a health check configured.
	HealthChecked bool `json:"health_checked"`
	// MasterPID is the PID of the current generation's main process; 0 if none.
	MasterPID int `json:"master_pid"`
	// WorkerPIDs are the live children of the master (Gunicorn workers).
	WorkerPIDs []int `json:"worker_pids"`
	// Processes counts the app's processes: its cgroup's where it has one,
	// else the tree rooted at MasterPID.
	Processes int `json:"processes"`
	// Generation counts generations started for this app (1-based).
	Generation int `json:"generation"`
	// Release is the resolved working directory of the current generation.
	Release string `json:"release,omitempty"`
	// Started is when the current generation started; zero if none.
	Started  time.Time `json:"started"`
	Restarts int       `json:"restarts"`
	// LastExit is the last exit of a generation; nil if none yet.
	LastExit *ExitInfo `json:"last_exit,omitempty"`
	// NextRestart is when a backoff ends; zero unless in backoff/failed.
	NextRestart time.Time          `json:"next_restart"`
	Backoff     time.Duration      `json:"backoff_ns"`
	Listeners   []ListenerSnapshot `json:"listeners"`
	// Reloading is true while a reload runs.
	Reloading  bool           `json:"reloading"`
	LastReload *ReloadResult  `json:"last_reload,omitempty"`
	Reloads    map[string]int `json:"reloads"`
	// StatsdBridge reports whether the supervisor receives this app's statsd.
	StatsdBridge bool   `json:"statsd_bridge"`
	StatsdAddr   string `json:"statsd_addr,omitempty"`
	// Required is the app's `required` key: it counts for readiness.
	Required bool `json:"required"`
	// Wanted: the app is meant to run (started and not stopped on purpose,
	// nor finished under its restart policy).
	Wanted bool `json:"wanted"`
	// Attempted: a generation was spawned (or its spawn failed) at least
	// once, or one was handed over running.
	Attempted bool `json:"attempted"`
	// Message is a human explanation of the state (e.g. the last error).
	Message string `json:"message,omitempty"`
	// Traceback is the last stderr lines of the generation whose
	// unexpected exit is the app's latest exit, while the app is not
	// running (a Python traceback); nil otherwise.
	Traceback []string `json:"traceback,omitempty"`
	// LogDropped counts output lines that never reached the app's log sink.
	LogDropped uint64 `json:"log_dropped"`
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
	return ListenerSnapshot{Address: s.Spec.Raw, Bound: s.Bound, FD: s.FD(), Network: s.Network(), Backlog: s.Spec.Backlog}
}
