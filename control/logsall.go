package control

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
)

// logsAll answers GET /v1/logs[?app=A&app=B...] (with the query of the
// logs verb: n, stderr, follow, history, since) with the lines of the named
// apps, every app when none is named, each LogLine naming its App: the
// recent lines of all of them merged by time (the n most recent over all),
// then with follow every later line of any of them as it is read. An
// unknown app is an error before anything is sent.
func (s *Server) logsAll(w http.ResponseWriter, r *http.Request) {
	if s.Logs == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "logs are not available in this build")
		return
	}
	q, err := parseLogQuery(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	apps := r.URL.Query()["app"]
	if len(apps) == 0 {
		for _, a := range s.Backend.Status() {
			apps = append(apps, a.Name)
		}
	}
	var recent []LogLine
	var lives []<-chan LogLine
	for _, name := range apps {
		rec, live, stop, err := s.Logs.OpenLogs(name, q)
		if err != nil {
			status, code := classify(err)
			writeError(w, status, code, fmt.Sprintf("logs %s: %v", name, err))
			return
		}
		defer stop()
		for i := range rec {
			rec[i].App = name
		}
		recent = append(recent, rec...)
		if live != nil {
			lives = append(lives, tagApp(r.Context(), name, live))
		}
	}
	slices.SortStableFunc(recent, func(a, b LogLine) int { return cmp.Compare(a.Time.UnixNano(), b.Time.UnixNano()) })
	if q.N > 0 && len(recent) > q.N {
		recent = recent[len(recent)-q.N:]
	}
	if q.NoHistory {
		recent = nil
	}
	streamLogs(w, r, recent, merge(r.Context(), lives))
}

// tagApp passes live's lines on with App set to app, until live closes or
// ctx ends; then it closes the channel it returns.
func tagApp(ctx context.Context, app string, live <-chan LogLine) <-chan LogLine {
	out := make(chan LogLine)
	go func() {
		defer close(out)
		for l := range live {
			l.App = app
			select {
			case out <- l:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// merge passes on the lines of every channel of in, in the order they
// arrive, until all are closed or ctx ends; then it closes the channel it
// returns. With no channel it returns nil (nothing to follow).
func merge(ctx context.Context, in []<-chan LogLine) <-chan LogLine {
	if len(in) == 0 {
		return nil
	}
	out := make(chan LogLine)
	var wg sync.WaitGroup
	for _, c := range in {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for l := range c {
				select {
				case out <- l:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	return out
}

// LogsAll reads the lines of apps (every app when empty) per q, each
// naming its app, passing each to onLine; with q.Follow it returns when
// ctx ends or the supervisor ends the answer.
func (c *Client) LogsAll(ctx context.Context, apps []string, q LogQuery, onLine func(LogLine)) error {
	v := q.values()
	for _, a := range apps {
		v.Add("app", a)
	}
	return c.readLogs(ctx, "/v1/logs?"+v.Encode(), onLine)
}
