package control

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// Configurer re-reads the configuration file and applies it (optional).
type Configurer interface {
	// Reread loads the file and says what Update would do, changing
	// nothing; an invalid file is a *Error with code bad_request whose
	// message names file:line.
	Reread(ctx context.Context) (*RereadResponse, error)
	// Update loads the file and applies it to the apps named (every app
	// when apps is empty), one progress line per app; an invalid file
	// changes nothing and fails with code bad_request.
	Update(ctx context.Context, apps []string, progress Progress) Outcome
}

// AppChange is what an update does (or did) to one app.
type AppChange struct {
	App string `json:"app"`
	// Change is "added", "removed", "changed" or "unchanged".
	Change string `json:"change"`
	// Action, for "changed": "in place", "reload" or "restart".
	Action string `json:"action,omitempty"`
	// Keys are the app's settings that differ, for "changed".
	Keys []string `json:"keys,omitempty"`
}

// RereadResponse answers GET /v1/reread.
type RereadResponse struct {
	Config string      `json:"config"`
	Apps   []AppChange `json:"apps"`
	// Supervisor lists the [supervisor] settings that differ: an update
	// does not apply them; a restart of the supervisor does.
	Supervisor []string `json:"supervisor,omitempty"`
}

func (s *Server) reread(w http.ResponseWriter, r *http.Request) {
	if s.Config == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "this supervisor cannot re-read its configuration")
		return
	}
	resp, err := s.Config.Reread(r.Context())
	if err != nil {
		status, code := classify(err)
		writeError(w, status, code, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) update(w http.ResponseWriter, r *http.Request) {
	if s.Config == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "this supervisor cannot re-read its configuration")
		return
	}
	apps := r.URL.Query()["app"]
	// The update continues if the client goes away: a half-applied one is worse.
	streamOutcome(w, func(progress Progress) Outcome {
		return s.Config.Update(context.WithoutCancel(r.Context()), apps, progress)
	})
}

// streamOutcome answers with an event stream: one line per progress phase
// of run, then the final event of its outcome.
func streamOutcome(w http.ResponseWriter, run func(Progress) Outcome) {
	st := newStream(w)
	start := time.Now()
	out := run(func(msg string) { st.send(Event{Phase: msg}) })
	st.send(finalEvent(out, time.Since(start)))
}

// Reread asks what an update of the configuration file would do.
func (c *Client) Reread(ctx context.Context) (*RereadResponse, error) {
	var resp RereadResponse
	return &resp, c.getJSON(ctx, http.MethodGet, "/v1/reread", &resp)
}

// Update applies the configuration file to apps (every app when empty),
// passing each progress line to onPhase; the final event is returned.
func (c *Client) Update(ctx context.Context, apps []string, onPhase func(Event)) (Event, error) {
	path := "/v1/update"
	if len(apps) > 0 {
		path += "?" + url.Values{"app": apps}.Encode()
	}
	return c.stream(ctx, path, onPhase)
}
