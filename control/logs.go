package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// LogQuery selects an app's lines for the logs verb.
type LogQuery struct {
	// N is the number of recent lines (0: every line held).
	N int
	// Stderr keeps only the app's stderr lines.
	Stderr bool
	// Follow keeps the answer open, streaming lines as they are read.
	Follow bool
	// Since, when not zero, keeps only the lines read at or after it.
	Since time.Time
	// NoHistory sends no line read before the request (`-n 0`): with
	// Follow, only later lines.
	NoHistory bool
}

// LogLine is one line of an app's output, one NDJSON object of the logs
// answer.
type LogLine struct {
	// App is the app that wrote the line: set in the answer of the logs of
	// several apps (GET /v1/logs), empty in one app's.
	App string `json:"app,omitempty"`
	// Time is when the supervisor read the line.
	Time time.Time `json:"time"`
	// Gen is the generation that wrote it.
	Gen int `json:"gen"`
	// Stream is "stdout", "stderr", or "log" for a line of the supervisor
	// about the app's log (lines dropped, a follower that fell behind).
	Stream string `json:"stream"`
	Text   string `json:"text"`
	// Part is 0 for a whole line, else the piece number of a line longer
	// than the capture's limit; More is set on every piece but the last.
	Part int  `json:"part,omitempty"`
	More bool `json:"more,omitempty"`
}

// Logs is what the logs verb reads (optional: without it the verb answers
// unavailable).
type Logs interface {
	// OpenLogs returns app's recent lines matching q, oldest first, and with
	// q.Follow a channel of every later matching line, closed when the
	// supervisor ends the follow, and stop, which ends it (safe to call
	// more than once; live is nil and stop a no-op without q.Follow). The
	// error is for an unknown app.
	OpenLogs(app string, q LogQuery) (recent []LogLine, live <-chan LogLine, stop func(), err error)
	// ReopenLog reopens app's log file and asks a Gunicorn master to
	// reopen its own (`supctl logs APP --reopen`).
	ReopenLog(ctx context.Context, app string) error
}

// logs answers GET /v1/apps/{app}/logs?n=N&stderr=1&follow=1 with NDJSON
// LogLine objects: the recent lines at once, then (follow) each line as it
// is read, until the client goes or the supervisor ends the follow.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	if s.Logs == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "logs are not available in this build")
		return
	}
	q, err := parseLogQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	name := r.PathValue("app")
	recent, live, stop, err := s.Logs.OpenLogs(name, q)
	if err != nil {
		status, code := classify(err)
		writeError(w, status, code, fmt.Sprintf("logs %s: %v", name, err))
		return
	}
	defer stop()
	if q.NoHistory {
		recent = nil
	}
	streamLogs(w, r, recent, live)
}

// SupervisorLog is what the log verb reads: the supervisor's own recent
// log lines (optional: without it the verb answers unavailable).
type SupervisorLog interface {
	// OpenSupervisorLog returns the recent lines (q.N of them; 0: all
	// held), and with q.Follow a channel of every later line and stop, as
	// Logs.OpenLogs does.
	OpenSupervisorLog(q LogQuery) (recent []LogLine, live <-chan LogLine, stop func())
}

// supervisorLog answers GET /v1/log?n=N&follow=1 with NDJSON LogLine
// objects of the supervisor's own log.
func (s *Server) supervisorLog(w http.ResponseWriter, r *http.Request) {
	if s.SupervisorLog == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "the supervisor's log is not available")
		return
	}
	q, err := parseLogQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	recent, live, stop := s.SupervisorLog.OpenSupervisorLog(q)
	defer stop()
	streamLogs(w, r, recent, live)
}

// streamLogs writes recent, then every line of live until live closes or
// the client goes, as NDJSON LogLine objects.
func streamLogs(w http.ResponseWriter, r *http.Request, recent []LogLine, live <-chan LogLine) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	f, _ := w.(http.Flusher) // every net/http ResponseWriter is one
	for _, l := range recent {
		if enc.Encode(l) != nil {
			return // the client is gone
		}
	}
	for live != nil {
		if f != nil {
			f.Flush()
		}
		select {
		case l, ok := <-live:
			if !ok || enc.Encode(l) != nil {
				return
			}
		case <-r.Context().Done():
			return
		}
	}
}

// reopenLogs answers POST /v1/apps/{app}/logs/reopen.
func (s *Server) reopenLogs(w http.ResponseWriter, r *http.Request) {
	if s.Logs == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "logs are not available in this build")
		return
	}
	name := r.PathValue("app")
	if err := s.Logs.ReopenLog(r.Context(), name); err != nil {
		status, code := classify(err)
		writeError(w, status, code, fmt.Sprintf("reopen logs of %s: %v", name, err))
		return
	}
	writeJSON(w, http.StatusOK, OKResponse{OK: true, Message: "reopen logs " + name + ": ok"})
}

// parseLogQuery reads n, stderr, follow, history and since (RFC 3339).
func parseLogQuery(v url.Values) (LogQuery, error) {
	var q LogQuery
	if s := v.Get("n"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return q, fmt.Errorf("n must be a number of lines >= 0, got %q", s)
		}
		q.N = n
	}
	history := true
	for name, dst := range map[string]*bool{"stderr": &q.Stderr, "follow": &q.Follow, "history": &history} {
		if s := v.Get(name); s != "" {
			b, err := strconv.ParseBool(s)
			if err != nil {
				return q, fmt.Errorf("%s must be true or false, got %q", name, s)
			}
			*dst = b
		}
	}
	q.NoHistory = !history
	if s := v.Get("since"); s != "" {
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return q, fmt.Errorf("since must be an RFC 3339 time, got %q", s)
		}
		q.Since = t
	}
	return q, nil
}

// values encodes q as parseLogQuery reads it.
func (q LogQuery) values() url.Values {
	v := url.Values{}
	v.Set("n", strconv.Itoa(q.N))
	if q.Stderr {
		v.Set("stderr", "true")
	}
	if q.Follow {
		v.Set("follow", "true")
	}
	if q.NoHistory {
		v.Set("history", "false")
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.Format(time.RFC3339Nano))
	}
	return v
}

// Logs reads app's lines per q, passing each to onLine; with q.Follow it
// returns when ctx ends or the supervisor ends the answer.
func (c *Client) Logs(ctx context.Context, app string, q LogQuery, onLine func(LogLine)) error {
	return c.readLogs(ctx, "/v1/apps/"+url.PathEscape(app)+"/logs?"+q.values().Encode(), onLine)
}

// SupervisorLog reads the supervisor's own recent log lines (n; 0: all
// held), and with follow every later one until ctx ends.
func (c *Client) SupervisorLog(ctx context.Context, n int, follow bool, onLine func(LogLine)) error {
	v := url.Values{}
	v.Set("n", strconv.Itoa(n))
	if follow {
		v.Set("follow", "true")
	}
	return c.readLogs(ctx, "/v1/log?"+v.Encode(), onLine)
}

// readLogs reads the NDJSON LogLine answer of path, passing each to onLine.
func (c *Client) readLogs(ctx context.Context, path string, onLine func(LogLine)) error {
	resp, err := c.do(ctx, http.MethodGet, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64*1024), 4<<20)
	for sc.Scan() {
		var l LogLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			return fmt.Errorf("decode log line: %w", err)
		}
		onLine(l)
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
		return &ConnectError{Path: c.Path, Err: err}
	}
	return nil
}

// ReopenLogs asks the supervisor to reopen app's log files.
func (c *Client) ReopenLogs(ctx context.Context, app string) (*OKResponse, error) {
	var ok OKResponse
	return &ok, c.getJSON(ctx, http.MethodPost, "/v1/apps/"+url.PathEscape(app)+"/logs/reopen", &ok)
}
