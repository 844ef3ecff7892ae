package control

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"
)

// Resolver knows the configuration's targets (Server.Resolver): it expands app names, instance base names (`worker` for
// `worker:0`, `worker:1`), `all` and `group:NAME` into app names in
// configuration order. Without it a target is an app name or `all`.
type Resolver interface {
	// Resolve returns the apps targets name; an unknown target is a
	// *Error with code not_found.
	Resolve(targets []string) ([]string, error)
}

// Signaller sends signals to apps' main processes (Server.Signaller, the
// signal verb).
type Signaller interface {
	// SignalApps sends sig to the main process of each app of names and
	// returns one result per app, in the order of names; an app that does
	// not run has code not_running.
	SignalApps(ctx context.Context, names []string, sig unix.Signal) []AppResult
}

// Signals is the allow-list of signals the signal verb sends, by the names
// supctl accepts (without "SIG").
var Signals = map[string]unix.Signal{
	"HUP": unix.SIGHUP, "INT": unix.SIGINT, "QUIT": unix.SIGQUIT, "TERM": unix.SIGTERM,
	"USR1": unix.SIGUSR1, "USR2": unix.SIGUSR2, "TTIN": unix.SIGTTIN, "TTOU": unix.SIGTTOU,
	"WINCH": unix.SIGWINCH, "KILL": unix.SIGKILL,
}

// SignalNames lists Signals' names, sorted.
func SignalNames() []string {
	out := make([]string, 0, len(Signals))
	for n := range Signals {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// ParseSignal maps "TTIN", "SIGTTIN" or "ttin" to its signal; any signal
// outside Signals is an error naming the allowed ones.
func ParseSignal(name string) (unix.Signal, error) {
	n := strings.TrimPrefix(strings.ToUpper(name), "SIG")
	if s, ok := Signals[n]; ok {
		return s, nil
	}
	return 0, fmt.Errorf("signal %q is not allowed (allowed: %s)", name, strings.Join(SignalNames(), ", "))
}

// resolve expands targets with the Server's Resolver, or else accepts
// `all` and the names Status lists.
func (s *Server) resolve(targets []string, apps []AppStatus) ([]string, error) {
	if s.Resolver != nil {
		return s.Resolver.Resolve(targets)
	}
	var out []string
	for _, t := range targets {
		found := false
		for _, a := range apps {
			if t == "all" || a.Name == t {
				found = true
				if !slices.Contains(out, a.Name) {
					out = append(out, a.Name)
				}
			}
		}
		if !found {
			return nil, &Error{Code: CodeNotFound, Err: fmt.Errorf("no such app: %q", t)}
		}
	}
	return out, nil
}

// statusTargets narrows resp to the apps of the request's targets (the
// {app} path value and every ?target=); false when it answered an error.
func (s *Server) statusTargets(w http.ResponseWriter, r *http.Request, resp *StatusResponse) bool {
	targets := r.URL.Query()["target"]
	if name := r.PathValue("app"); name != "" {
		targets = append([]string{name}, targets...)
	}
	if len(targets) == 0 {
		return true
	}
	names, err := s.resolve(targets, resp.Apps)
	if err != nil {
		status, code := classify(err)
		writeError(w, status, code, err.Error())
		return false
	}
	var some []AppStatus
	for _, a := range resp.Apps {
		if slices.Contains(names, a.Name) {
			some = append(some, a)
		}
	}
	resp.Apps = some
	return true
}

// signal answers POST /v1/signal/{sig}?target=T...: sig (a name of
// Signals) to the main process of every app the targets name.
func (s *Server) signal(w http.ResponseWriter, r *http.Request) {
	sb := s.Signaller
	if sb == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "this supervisor does not send signals")
		return
	}
	sig, err := ParseSignal(r.PathValue("sig"))
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	targets := r.URL.Query()["target"]
	if len(targets) == 0 {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "signal needs at least one ?target= (an app, all, group:NAME)")
		return
	}
	names, err := s.resolve(targets, s.Backend.Status())
	if err != nil {
		status, code := classify(err)
		writeError(w, status, code, err.Error())
		return
	}
	resp := BulkResponse{OK: true, Results: sb.SignalApps(r.Context(), names, sig)}
	for _, res := range resp.Results {
		resp.OK = resp.OK && res.OK
	}
	writeJSON(w, http.StatusOK, resp)
}

// StatusOf returns the status of the apps targets name (app names,
// instance base names, all, group:NAME); none: every app.
func (c *Client) StatusOf(ctx context.Context, targets []string) (*StatusResponse, error) {
	path := "/v1/status"
	if len(targets) > 0 {
		path += "?" + url.Values{"target": targets}.Encode()
	}
	var s StatusResponse
	return &s, c.getJSON(ctx, http.MethodGet, path, &s)
}

// Signal sends sig (a name of Signals) to the main process of every app
// targets name.
func (c *Client) Signal(ctx context.Context, sig string, targets []string) (*BulkResponse, error) {
	q := url.Values{"target": targets}
	var resp BulkResponse
	return &resp, c.getJSON(ctx, http.MethodPost, "/v1/signal/"+url.PathEscape(sig)+"?"+q.Encode(), &resp)
}
