package control

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// ErrorInbox serves the errors verb: the apps' error inboxes.
type ErrorInbox interface {
	// AppErrors returns app name's inbox; an unknown app is a *Error with
	// code not_found.
	AppErrors(name string) (AppErrors, error)
}

// ErrorsResponse answers errors: one inbox per app named, in
// configuration order.
type ErrorsResponse struct {
	Apps []AppErrors `json:"apps"`
}

// AppErrors is one app's error inbox.
type AppErrors struct {
	Name string `json:"name"`
	// Groups are the exception groups, most recently seen first.
	Groups []ErrorGroup `json:"groups"`
	// WorkerTimeouts counts Gunicorn's "WORKER TIMEOUT" lines.
	WorkerTimeouts uint64 `json:"worker_timeouts"`
	// WorkerKilled counts workers killed by a signal, by signal name.
	WorkerKilled map[string]uint64 `json:"worker_killed,omitempty"`
	// DroppedLines counts stderr lines the parser was too far behind to
	// read: groups may then miss occurrences.
	DroppedLines uint64 `json:"dropped_lines"`
}

// ErrorGroup is one fingerprint's exceptions: the type and the innermost
// frames of the app's own code.
type ErrorGroup struct {
	Fingerprint string `json:"fingerprint"`
	Exception   string `json:"exception"`
	// Message is the latest occurrence's exception line.
	Message string `json:"message"`
	// Where is the innermost frame of the app's own code.
	Where     string    `json:"where,omitempty"`
	Count     uint64    `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Generation is the generation the group first appeared in.
	Generation int `json:"generation"`
	// Traceback is the latest occurrence's full traceback.
	Traceback []string `json:"traceback"`
}

// errors answers GET /v1/errors?target=T...: the error inboxes of the
// apps the targets name (none: every app).
func (s *Server) errors(w http.ResponseWriter, r *http.Request) {
	eb := s.Errors
	if eb == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "this supervisor keeps no error inbox")
		return
	}
	targets := r.URL.Query()["target"]
	if len(targets) == 0 {
		targets = []string{"all"}
	}
	var apps []AppStatus
	if s.Resolver == nil {
		apps = s.Backend.Status() // resolve reads the names there
	}
	names, err := s.resolve(targets, apps)
	if err != nil {
		status, code := classify(err)
		writeError(w, status, code, err.Error())
		return
	}
	resp := ErrorsResponse{Apps: []AppErrors{}}
	for _, n := range names {
		e, err := eb.AppErrors(n)
		if err != nil {
			status, code := classify(err)
			writeError(w, status, code, err.Error())
			return
		}
		resp.Apps = append(resp.Apps, e)
	}
	writeJSON(w, http.StatusOK, resp)
}

// Errors returns the error inboxes of the apps targets name (none: every
// app).
func (c *Client) Errors(ctx context.Context, targets []string) (*ErrorsResponse, error) {
	path := "/v1/errors"
	if len(targets) > 0 {
		path += "?" + url.Values{"target": targets}.Encode()
	}
	var resp ErrorsResponse
	return &resp, c.getJSON(ctx, http.MethodGet, path, &resp)
}
