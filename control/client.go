package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"time"
)

// Client talks to a supervisor's control socket.
type Client struct {
	Path string
	hc   *http.Client
}

// NewClient returns a client for the socket at path.
func NewClient(path string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
		DisableKeepAlives: true,
	}
	return &Client{Path: path, hc: &http.Client{Transport: tr}}
}

// ConnectError means the supervisor could not be reached (supctl exit 3).
type ConnectError struct {
	Path string
	Err  error
}

func (e *ConnectError) Error() string {
	return fmt.Sprintf("cannot connect to the supervisor at %s: %v", e.Path, e.Err)
}

func (e *ConnectError) Unwrap() error { return e.Err }

// APIError is a non-2xx answer (supctl exit 1, or 2 for bad_request).
type APIError struct {
	Status int
	ErrorResponse
}

func (e *APIError) Error() string { return e.ErrorResponse.Error }

func (c *Client) do(ctx context.Context, method, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, "http://supervisor"+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ne net.Error
		var oe *net.OpError
		if errors.As(err, &oe) || errors.As(err, &ne) || errors.Is(err, io.EOF) {
			return nil, &ConnectError{Path: c.Path, Err: err}
		}
		return nil, &ConnectError{Path: c.Path, Err: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		ae := &APIError{Status: resp.StatusCode}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20)) // a short body still decodes below
		if jerr := json.Unmarshal(b, &ae.ErrorResponse); jerr != nil || ae.ErrorResponse.Error == "" {
			ae.ErrorResponse = ErrorResponse{Error: fmt.Sprintf("HTTP %d: %s", resp.StatusCode, string(b)), Code: CodeFailed}
		}
		return nil, ae
	}
	return resp, nil
}

func (c *Client) getJSON(ctx context.Context, method, path string, v any) error {
	resp, err := c.do(ctx, method, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

// Status returns every app's status, or one app's when app != "".
func (c *Client) Status(ctx context.Context, app string) (*StatusResponse, error) {
	path := "/v1/status"
	if app != "" {
		path += "/" + url.PathEscape(app)
	}
	var s StatusResponse
	return &s, c.getJSON(ctx, http.MethodGet, path, &s)
}

// Version asks the running supervisor for its version.
func (c *Client) Version(ctx context.Context) (*VersionResponse, error) {
	var v VersionResponse
	return &v, c.getJSON(ctx, http.MethodGet, "/v1/version", &v)
}

// Act runs start, stop or restart on app.
func (c *Client) Act(ctx context.Context, verb, app string) (*OKResponse, error) {
	var ok OKResponse
	return &ok, c.getJSON(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/"+verb, &ok)
}

// Reload streams a reload (release == "") or a deploy of app; each phase is
// passed to onPhase; the final event is returned.
func (c *Client) Reload(ctx context.Context, app, strategy, release string, onPhase func(Event)) (Event, error) {
	return c.ReloadCanary(ctx, app, strategy, release, "", 0, onPhase)
}

// ReloadCanary is Reload run as a canary: canary is the shares of new
// connections ("10%,50%", see strategy.ParseCanary; "" for none), every
// each step's length (0: the default).
func (c *Client) ReloadCanary(ctx context.Context, app, strategy, release, canary string, every time.Duration, onPhase func(Event)) (Event, error) {
	verb := "reload"
	q := url.Values{}
	if canary != "" {
		q.Set(QueryCanary, canary)
	}
	if every != 0 {
		q.Set(QueryCanaryFor, every.String())
	}
	if strategy != "" {
		q.Set("strategy", strategy)
	}
	if release != "" {
		verb = "deploy"
		q.Set("release", release)
	}
	path := "/v1/apps/" + url.PathEscape(app) + "/" + verb
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	return c.stream(ctx, path, onPhase)
}

// Rollback streams a rollback of app (see Rollbacker).
func (c *Client) Rollback(ctx context.Context, app string, onPhase func(Event)) (Event, error) {
	return c.stream(ctx, "/v1/apps/"+url.PathEscape(app)+"/rollback", onPhase)
}

// Upgrade streams a self-upgrade of the supervisor.
func (c *Client) Upgrade(ctx context.Context, onPhase func(Event)) (Event, error) {
	return c.stream(ctx, "/v1/upgrade", onPhase)
}

func (c *Client) stream(ctx context.Context, path string, onPhase func(Event)) (Event, error) {
	resp, err := c.do(ctx, http.MethodPost, path)
	if err != nil {
		return Event{}, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			return Event{}, fmt.Errorf("decode event: %w", err)
		}
		if ev.Done {
			return ev, nil
		}
		if onPhase != nil {
			onPhase(ev)
		}
	}
	if err := sc.Err(); err != nil {
		return Event{}, &ConnectError{Path: c.Path, Err: err}
	}
	return Event{}, &ConnectError{Path: c.Path, Err: fmt.Errorf("connection closed before the final event (at %s)", time.Now().Format(time.RFC3339))}
}
