// Package control is the supervisor's control API: HTTP+JSON over a Unix
// socket (mode 0600, or 0660 with a configured group), every connection
// checked with SO_PEERCRED, and a fixed allow-list of verbs. The types here
// are shared by the server and by supctl; `curl --unix-socket` works too.
package control

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/defaults"
)

// DefaultSocket is the control socket's path when the configuration names
// none (and supctl's when neither -s nor $SUPCTL_SOCKET is given).
const DefaultSocket = defaults.ControlSocket

// Verbs is the fixed allow-list of operations. Routes are
//
//	GET  /v1/status            every app         -> StatusResponse
//	GET  /v1/status/{app}      one app           -> StatusResponse
//	POST /v1/apps/{app}/start|stop|restart       -> OKResponse
//	POST /v1/apps/{app}/reload[?strategy=NAME]   -> Event stream (NDJSON); NAME of reload/strategy
//	POST /v1/apps/{app}/deploy?release=DIR[&strategy=]  -> Event stream (NDJSON)
//	     both also take &canary=10%,50%[&canary_for=60s]: run as a canary (CanaryOf)
//	POST /v1/apps/{app}/rollback                 -> Event stream (NDJSON)
//	POST /v1/upgrade           re-exec the supervisor binary -> Event stream
//	GET  /v1/apps/{app}/logs[?n=N&stderr=true&follow=true&history=false&since=RFC3339] -> LogLine stream (NDJSON)
//	GET  /v1/logs[?app=A...&n=N&...]            several apps (all: no app), merged by time -> LogLine stream
//	POST /v1/apps/{app}/logs/reopen              -> OKResponse
//	POST /v1/act/start|stop|restart?target=T...  apps, all, group:NAME -> BulkResponse
//	GET  /v1/reread            what an update would do      -> RereadResponse
//	POST /v1/update[?app=A...] apply the configuration file -> Event stream
//	GET  /v1/version                             -> VersionResponse
//	GET  /v1/status?target=T...  the apps of targets (app, instance base name, all, group:NAME)
//	GET  /v1/log[?n=N&follow=true]  the supervisor's own log -> LogLine stream (NDJSON)
//	POST /v1/signal/{SIG}?target=T...  SIG of Signals to the apps' main processes -> BulkResponse
//	GET  /v1/metrics           what /metrics serves (Prometheus text; ?app= and ?prefix= filter it)
//	GET  /v1/top               the series supctl top reads, computed cheaply (Prometheus text)
//	GET  /v1/errors[?target=T...]  the apps' error inboxes (all: no target) -> ErrorsResponse
//
// Anything else is 404 (unknown route) or 405 (wrong method).
var Verbs = []string{"status", "start", "stop", "restart", "reload", "deploy", "rollback", "upgrade", "version", "logs", "reread", "update", "signal", "log", "errors"}

// Code is the stable word that classifies an error answer.
type Code string

// The error codes of the API.
const (
	CodeBadRequest  Code = "bad_request"
	CodeNotFound    Code = "not_found"
	CodeBusy        Code = "busy"
	CodeNotRunning  Code = "not_running"
	CodeFailed      Code = "failed"
	CodeForbidden   Code = "forbidden"
	CodeUnavailable Code = "unavailable"
)

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
	Code  Code   `json:"code"`
}

// OKResponse answers start, stop and restart.
type OKResponse struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// StatusResponse answers status.
type StatusResponse struct {
	Supervisor SupervisorInfo `json:"supervisor"`
	Apps       []AppStatus    `json:"apps"`
}

// SupervisorInfo describes the supervisor process itself.
type SupervisorInfo struct {
	PID     int       `json:"pid"`
	Version string    `json:"version"`
	Started time.Time `json:"started"`
	Config  string    `json:"config"`
	// Upgrades counts in-place self-upgrades since the first start.
	Upgrades int `json:"upgrades"`
	// LastUpgrade is "ok: OLD -> NEW" or "rolled back: why" ("" if none).
	LastUpgrade string `json:"last_upgrade,omitempty"`
	// HTTP is the address the /metrics, /healthz and /readyz listener is
	// bound to (the real port when the configuration says port 0); "" when
	// the endpoint is disabled or could not be bound.
	HTTP string `json:"http"`
	// Degraded lists the features `supervisor doctor` found degraded on
	// this host when the supervisor started (empty when all work).
	Degraded []Feature `json:"degraded,omitempty"`
}

// Feature is one degraded feature of the supervisor's host: its name as
// `supervisor doctor` prints it, why it is off and what would turn it on.
type Feature struct {
	Name string `json:"name"`
	Why  string `json:"why"`
	Fix  string `json:"fix,omitempty"`
}

// VersionResponse answers version.
type VersionResponse struct {
	Version string `json:"version"`
	PID     int    `json:"pid"`
}

// Event is one line of a streamed answer (reload, deploy, upgrade): zero or
// more phases, then exactly one line with Done set.
type Event struct {
	Time  time.Time `json:"time"`
	Phase string    `json:"phase,omitempty"`
	Done  bool      `json:"done,omitempty"`
	// OK is the final verdict (with Done).
	OK bool `json:"ok,omitempty"`
	// Result is "ok", "rolled_back" or "failed" (with Done).
	Result string `json:"result,omitempty"`
	Error  string `json:"error,omitempty"`
	Code   Code   `json:"code,omitempty"`
	// Tail is the failed generation's last output lines (with Done).
	Tail     []string      `json:"tail,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
}

// AppState is an app's lifecycle state as the API names it.
type AppState string

// The states an app reports.
const (
	// StateStopped: not running and not meant to run.
	StateStopped AppState = "stopped"
	// StateStarting: a generation was spawned and is not yet ready.
	StateStarting AppState = "starting"
	// StateRunning: a generation is ready and serving.
	StateRunning AppState = "running"
	// StateBackoff: the last generation exited; a restart is scheduled.
	StateBackoff AppState = "backoff"
	// StateStopping: a stop was requested and the generation is draining.
	StateStopping AppState = "stopping"
	// StateFailed: crash-looping; still retried at the capped interval.
	StateFailed AppState = "failed"
)

func (s AppState) String() string { return string(s) }

// AppStates lists every AppState in the order status summaries use.
var AppStates = []AppState{StateStopped, StateStarting, StateRunning, StateBackoff, StateStopping, StateFailed}

// AppStatus is one app's state at the moment of the request.
type AppStatus struct {
	Name  string   `json:"name"`
	Kind  string   `json:"kind"`
	State AppState `json:"state"`
	// Healthy is the last health verdict (true when the app has no check and runs).
	Healthy bool `json:"healthy"`
	// HealthChecked is true when the app has a health check configured.
	HealthChecked bool `json:"health_checked"`
	// MasterPID is the PID of the current generation's main process; 0 if none.
	MasterPID int `json:"master_pid"`
	// WorkerPIDs are the live children of the master (Gunicorn workers).
	WorkerPIDs []int `json:"worker_pids"`
	// Processes counts the app's processes: those in its cgroup where it
	// has one (detached daemons included), else the tree rooted at
	// MasterPID.
	Processes int `json:"processes"`
	// Generation counts generations started for this app (1-based).
	Generation int `json:"generation"`
	// Release is the resolved working directory of the current generation.
	Release string `json:"release,omitempty"`
	// Started is when the current generation started; zero if none.
	Started  time.Time `json:"started"`
	Restarts int       `json:"restarts"`
	// LastExit is the last exit of a generation; nil if none yet.
	LastExit *Exit `json:"last_exit,omitempty"`
	// NextRestart is when a backoff ends; zero unless in backoff or failed.
	NextRestart time.Time     `json:"next_restart"`
	Backoff     time.Duration `json:"backoff_ns"`
	Listeners   []Listener    `json:"listeners"`
	// Reloading is true while a reload runs.
	Reloading  bool        `json:"reloading"`
	LastReload *LastReload `json:"last_reload,omitempty"`
	// Reloads counts finished reloads by result word.
	Reloads map[string]int `json:"reloads"`
	// StatsdBridge reports whether the supervisor receives this app's statsd.
	StatsdBridge bool   `json:"statsd_bridge"`
	StatsdAddr   string `json:"statsd_addr,omitempty"`
	// Required: the app counts for readiness (READY=1, /readyz).
	Required bool `json:"required"`
	// Wanted: the app is meant to run (not stopped on purpose, nor finished
	// under its restart policy).
	Wanted bool `json:"wanted"`
	// Attempted: the app has been started at least once.
	Attempted bool `json:"attempted"`
	// Message is a human explanation of the state (e.g. the last error).
	Message string `json:"message,omitempty"`
	// Traceback is the last stderr lines of the generation that exited
	// unexpectedly, while the app is not running (a Python traceback).
	Traceback []string `json:"traceback,omitempty"`
	// LogDropped counts output lines that never reached the app's log sink.
	LogDropped uint64 `json:"log_dropped"`
	// WorkersTarget is the worker count the supervisor scales a workers
	// range ("MIN..MAX") to; 0 for a fixed count.
	WorkersTarget int `json:"workers_target,omitempty"`
	// WorkersRecycled counts workers sent a graceful TERM for their memory
	// (max_worker_rss) since the supervisor started.
	WorkersRecycled uint64 `json:"workers_recycled,omitempty"`
	// Comparison compares the generation the last reload or deploy started
	// with the one it replaced over the app's compare_window (throughput,
	// errors, latency, Apdex, CPU and memory per worker, routes whose p99
	// moved), or says when it will; "" without route metrics or a reload.
	Comparison string `json:"comparison,omitempty"`
	// Kept is the previous generation kept booted, unsteered, for
	// `supctl rollback` (keep_previous); nil for none.
	Kept *Kept `json:"kept,omitempty"`
}

// Kept is the generation an app keeps for a rollback, until Until;
// LeftSeconds is the time left when the status was taken.
type Kept struct {
	Generation  int       `json:"generation"`
	PID         int       `json:"pid"`
	Release     string    `json:"release,omitempty"`
	Until       time.Time `json:"until"`
	LeftSeconds float64   `json:"left_seconds"`
}

// Exit describes how a process ended.
type Exit struct {
	// Code is the exit code, or -1 when killed by a signal.
	Code int `json:"code"`
	// Signal is the signal number that killed it, 0 if it exited.
	Signal int `json:"signal,omitempty"`
	// Time the exit was reaped.
	Time time.Time `json:"time"`
}

// String is "exit 3" or "signal 9 (SIGKILL)".
func (e Exit) String() string {
	if e.Signal == 0 {
		return fmt.Sprintf("exit %d", e.Code)
	}
	return fmt.Sprintf("signal %d (%s)", e.Signal, unix.SignalName(unix.Signal(e.Signal)))
}

// Listener is one socket an app's generations accept on.
type Listener struct {
	// Address as written in the configuration ("tcp://127.0.0.1:8000").
	Address string `json:"address"`
	// Bound is the actual bound address (port resolved).
	Bound string `json:"bound"`
	// Network is "tcp" or "unix".
	Network string `json:"network"`
	// Backlog is the listen(2) backlog.
	Backlog int `json:"backlog"`
	// Steering is how new connections reach the app's generations: "bpf"
	// (each has its own socket; the serving one is chosen by the kernel),
	// "rename" (a Unix listener: a reload's generation has its own socket,
	// switched to by renaming the path) or "shared" (one socket for all).
	Steering string `json:"steering,omitempty"`
	// Closed: the supervisor holds no socket for the listener (the app was
	// stopped by request): new connections are refused until it starts.
	Closed bool `json:"closed,omitempty"`
}

// LastReload is the outcome of an app's last reload.
type LastReload struct {
	Strategy string `json:"strategy"`
	// Result is "ok", "rolled_back" or "failed".
	Result   string        `json:"result"`
	Reason   string        `json:"reason,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
}
