package status

import (
	"time"

	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
)

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
	LastExit                                 *proc.ExitInfo
	Listeners                                []ListenerSnapshot
	LastReload                               *reload.Result
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

// ListenerSnapshot describes one held socket. Its fields mean what the
// fields of the same name in control.Listener (the wire type) say; FD is
// the supervisor's own descriptor, for queue metrics (-1 once closed).
type ListenerSnapshot struct {
	Address, Bound, Network string
	FD, Backlog             int
	Steering                string
	Closed                  bool
}

// Listeners describes an app's held sockets, one per entry of its listen
// table, in listen order: a steered one reports its steering mode and the
// serving generation's socket (its queue is the one clients wait in).
func Listeners(entries []listen.Entry) []ListenerSnapshot {
	var out []ListenerSnapshot
	for _, e := range entries {
		ls := listenerOf(e.Socket)
		ls.Steering = string(e.Mode())
		if g := e.Steering; g != nil {
			if fd := g.ServingFD(); fd >= 0 {
				ls.FD = fd
			}
		}
		out = append(out, ls)
	}
	return out
}

// listenerOf describes the held socket s. A closed socket (no descriptor)
// has FD -1, Closed set and the network its spec names; an open one the
// network of its descriptor. Steering is left empty for the caller.
func listenerOf(s *listen.Socket) ListenerSnapshot {
	fd := s.FD()
	if fd < 0 {
		return ListenerSnapshot{Address: s.Spec.Raw, Bound: s.Bound, FD: -1, Network: s.Spec.Network.String(), Backlog: s.Spec.Backlog, Closed: true}
	}
	return ListenerSnapshot{Address: s.Spec.Raw, Bound: s.Bound, FD: fd, Network: s.Network(), Backlog: s.Spec.Backlog}
}

// KeptSnapshot describes the generation an app keeps booted and unsteered
// for a rollback (keep_previous): its generation number, master PID,
// release directory, and the end of its window.
type KeptSnapshot struct {
	Generation int
	PID        int
	Release    string
	Until      time.Time
}
