package control

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// BulkBackend runs start, stop or restart on several targets at once
// (Server.Bulk). A target is an app name, `all` or `group:NAME`.
type BulkBackend interface {
	// ActMany runs verb on every app the targets name, honouring the apps'
	// start and stop order, and returns one result per app in configuration
	// order. The error (no result then) is an unknown target or verb.
	ActMany(ctx context.Context, verb string, targets []string) ([]AppResult, error)
}

// AppResult is one app's outcome of a verb run on several targets.
type AppResult struct {
	App   string `json:"app"`
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
	Code  Code   `json:"code,omitempty"`
	// Tail is the last output lines of a generation whose start failed.
	Tail []string `json:"tail,omitempty"`
	// PID is the main process a signal was sent to.
	PID int `json:"pid,omitempty"`
	// Note qualifies a success (a stop that took KILL).
	Note string `json:"note,omitempty"`
}

// BulkResponse answers POST /v1/act/{verb}?target=T[&target=T...]: OK
// when every app's result is.
type BulkResponse struct {
	OK      bool        `json:"ok"`
	Results []AppResult `json:"results"`
}

// ResultOf is the AppResult of app after err (nil: ok).
func ResultOf(app string, err error) AppResult {
	if err == nil {
		return AppResult{App: app, OK: true}
	}
	_, code := classify(err)
	return AppResult{App: app, Error: err.Error(), Code: code}
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request) {
	verb := r.PathValue("verb")
	targets := r.URL.Query()["target"]
	b := s.Bulk
	switch {
	case b == nil:
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "this supervisor acts on one app at a time")
		return
	case verb != "start" && verb != "stop" && verb != "restart":
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no such verb for several apps: %q (start, stop, restart)", verb))
		return
	case len(targets) == 0:
		writeError(w, http.StatusBadRequest, CodeBadRequest, verb+" needs at least one ?target= (an app, all, group:NAME)")
		return
	}
	results, err := b.ActMany(r.Context(), verb, targets)
	if err != nil {
		status, code := classify(err)
		writeError(w, status, code, fmt.Sprintf("%s %s: %v", verb, strings.Join(targets, " "), err))
		return
	}
	resp := BulkResponse{OK: true, Results: results}
	for _, res := range results {
		resp.OK = resp.OK && res.OK
	}
	writeJSON(w, http.StatusOK, resp)
}

// ActMany runs start, stop or restart on the apps targets name (app names,
// `all`, `group:NAME`); see BulkBackend.
func (c *Client) ActMany(ctx context.Context, verb string, targets []string) (*BulkResponse, error) {
	q := url.Values{"target": targets}
	var resp BulkResponse
	return &resp, c.getJSON(ctx, http.MethodPost, "/v1/act/"+url.PathEscape(verb)+"?"+q.Encode(), &resp)
}
