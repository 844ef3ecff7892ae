// Package control is the supervisor's control API: HTTP+JSON over a Unix
// socket (mode 0600, or 0660 with a configured group), every connection
// checked with SO_PEERCRED, and a fixed allow-list of verbs. The types here
// are shared by the server and by supctl; `curl --unix-socket` works too.
package control

import (
	"time"

	"github.com/gunisup/supervisor/supervise"
)

// Verbs is the fixed allow-list of operations. Routes are
//
//	GET  /v1/status            every app         -> StatusResponse
//	GET  /v1/status/{app}      one app           -> StatusResponse
//	POST /v1/apps/{app}/start|stop|restart       -> OKResponse
//	POST /v1/apps/{app}/reload[?strategy=swap|usr2]      -> Event stream (NDJSON)
//	POST /v1/apps/{app}/deploy?release=DIR[&strategy=]  -> Event stream (NDJSON)
//	POST /v1/upgrade           re-exec the supervisor binary -> Event stream
//	GET  /v1/version                             -> VersionResponse
//
// Anything else is 404 (unknown route) or 405 (wrong method).
var Verbs = []string{"status", "start", "stop", "restart", "reload", "deploy", "upgrade", "version"}

// ErrorResponse is the body of every non-2xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
	// Code is a stable word: bad_request, not_found, busy, not_running,
	// failed, forbidden, unavailable.
	Code string `json:"code"`
}

// OKResponse answers start, stop and restart.
type OKResponse struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

// StatusResponse answers status.
type StatusResponse struct {
	Supervisor SupervisorInfo          `json:"supervisor"`
	Apps       []supervise.AppSnapshot `json:"apps"`
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
	Code   string `json:"code,omitempty"`
	// Tail is the failed generation's last output lines (with Done).
	Tail     []string      `json:"tail,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
}
