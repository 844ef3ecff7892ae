package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// recordingBackend is the scripted backend that also records which verb
// reached it, so that a fuzzed request can be matched with what it did.
type recordingBackend struct {
	backend
	mu    sync.Mutex
	calls []string // "verb app"
}

func (b *recordingBackend) record(verb, name string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, verb+" "+name)
}

// take returns the calls since the last take.
func (b *recordingBackend) take() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.calls
	b.calls = nil
	return c
}

func (b *recordingBackend) StartApp(ctx context.Context, n string) error {
	b.record("start", n)
	return b.backend.StartApp(ctx, n)
}

func (b *recordingBackend) StopApp(ctx context.Context, n string) error {
	b.record("stop", n)
	return b.backend.StopApp(ctx, n)
}

func (b *recordingBackend) RestartApp(ctx context.Context, n string) error {
	b.record("restart", n)
	return b.backend.RestartApp(ctx, n)
}

func (b *recordingBackend) Reload(ctx context.Context, n, s string, p Progress) Outcome {
	b.record("reload", n)
	return b.backend.Reload(ctx, n, s, p)
}

func (b *recordingBackend) Deploy(ctx context.Context, n, r, s string, p Progress) Outcome {
	b.record("deploy", n)
	return b.backend.Reload(ctx, n, s, p)
}

func (b *recordingBackend) Rollback(ctx context.Context, n string, p Progress) Outcome {
	b.record("rollback", n)
	return b.backend.Reload(ctx, n, "", p)
}

// allowedRoutes are the routes of api.go's Verbs comment, on the escaped
// path (an app name is one segment; %2F stays inside it). HEAD is answered
// wherever GET is, as net/http does.
var allowedRoutes = []struct {
	methods []string
	re      *regexp.Regexp
}{
	{[]string{"GET", "HEAD"}, regexp.MustCompile(`^/v1/status(/[^/]+)?$`)},
	{[]string{"GET", "HEAD"}, regexp.MustCompile(`^/v1/version$`)},
	{[]string{"POST"}, regexp.MustCompile(`^/v1/apps/[^/]+/(start|stop|restart|reload|deploy|rollback)$`)},
	{[]string{"POST"}, regexp.MustCompile(`^/v1/upgrade$`)},
	{[]string{"GET", "HEAD"}, regexp.MustCompile(`^/v1/errors$`)},
}

func allowedRoute(method, escapedPath string) bool {
	for _, r := range allowedRoutes {
		if slices.Contains(r.methods, method) && r.re.MatchString(escapedPath) {
			return true
		}
	}
	return false
}

var errorCodes = []Code{CodeBadRequest, CodeNotFound, CodeBusy, CodeNotRunning, CodeFailed, CodeForbidden, CodeUnavailable}

// FuzzControlRequest sends a request with a fuzzed method, path, query and
// body to a real Server on a Unix socket, backed by the scripted backend
// (apps "web" and "worker"). Every answer is JSON (or an NDJSON event
// stream); a 2xx answer comes only from an allow-listed verb on its method
// and reaches the backend only with that verb; anything else is a JSON
// error with a known code.
func FuzzControlRequest(f *testing.F) {
	b := &recordingBackend{}
	_, sock := serve(f, b)
	client := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       10 * time.Second,
	}
	f.Cleanup(client.CloseIdleConnections)
	f.Fuzz(func(t *testing.T, method, path, query string, body []byte) {
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		target := "http://control" + path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(method, target, bytes.NewReader(body))
		if err != nil || !parses(req) {
			return // not a request that can reach the handler
		}
		b.take()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("%s %s: reading the answer: %v", method, target, err)
		}
		checkAnswer(t, req, resp, data, b.take())
	})
}

// parses reports whether net/http's own request parser accepts req as sent
// on the wire; a request it refuses (a space in the query, say) is answered
// "400 Bad Request" in plain text before any handler of the API runs. It
// restores req's body.
func parses(req *http.Request) bool {
	body, err := req.GetBody()
	if err != nil {
		return false
	}
	var wire bytes.Buffer
	err = req.Write(&wire)
	req.Body = body
	if err != nil {
		return false
	}
	_, err = http.ReadRequest(bufio.NewReader(&wire))
	return err == nil
}

// checkAnswer asserts the properties FuzzControlRequest states.
func checkAnswer(t *testing.T, req *http.Request, resp *http.Response, data []byte, calls []string) {
	t.Helper()
	what := req.Method + " " + req.URL.RequestURI()
	ct := resp.Header.Get("Content-Type")
	if ct != "application/json" && ct != "application/x-ndjson" {
		t.Fatalf("%s: HTTP %d with Content-Type %q: %q", what, resp.StatusCode, ct, data)
	}
	ok := resp.StatusCode/100 == 2
	if ok && !allowedRoute(req.Method, req.URL.EscapedPath()) {
		t.Errorf("%s: HTTP %d for a route that is not allow-listed", what, resp.StatusCode)
	}
	for _, c := range calls {
		verb, _, _ := strings.Cut(c, " ")
		if !slices.Contains(Verbs, verb) || req.Method != "POST" || !strings.HasSuffix(req.URL.Path, "/"+verb) {
			t.Errorf("%s: reached the backend as %q", what, c)
		}
	}
	if len(calls) > 1 {
		t.Errorf("%s: reached the backend %d times: %q", what, len(calls), calls)
	}
	if req.Method == "HEAD" {
		return // no body to check
	}
	switch {
	case !ok:
		var e ErrorResponse
		if err := json.Unmarshal(data, &e); err != nil || e.Error == "" || !slices.Contains(errorCodes, e.Code) {
			t.Errorf("%s: HTTP %d, want a JSON error with a known code, got %q (%v)", what, resp.StatusCode, data, err)
		}
	case ct == "application/x-ndjson":
		checkStream(t, what, data)
	default:
		var v map[string]any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Errorf("%s: HTTP %d with a body that is not a JSON object: %q", what, resp.StatusCode, data)
		}
	}
}

// checkStream asserts an NDJSON answer: events, exactly one Done, last.
func checkStream(t *testing.T, what string, data []byte) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(data))
	done := 0
	var last Event
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("%s: stream line %q: %v", what, sc.Text(), err)
		}
		last = ev
		if last.Done {
			done++
		}
	}
	if done != 1 || !last.Done {
		t.Errorf("%s: %d Done events, last %+v, want exactly one, last", what, done, last)
	}
}
