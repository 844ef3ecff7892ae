package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/listen/sockfile"
)

// Backend is what the server drives: the supervisor's apps, in the API's
// own types. Errors that are a *Error carry their code to the client; any
// other error is answered with code failed.
type Backend interface {
	// Status returns every app's status, in configuration order.
	Status() []AppStatus
	StartApp(ctx context.Context, name string) error
	StopApp(ctx context.Context, name string) error
	RestartApp(ctx context.Context, name string) error
	// CheckStrategy returns an error (shown to the client with code
	// bad_request) when name is not a reload strategy; "" means the app's
	// configured one and is always valid.
	CheckStrategy(name string) error
	// Reload replaces app's serving generation, sending one line per phase
	// to progress; strategy is "" or valid by CheckStrategy.
	Reload(ctx context.Context, name, strategy string, progress Progress) Outcome
	// Deploy points app's directory link at release and reloads it.
	Deploy(ctx context.Context, name, release, strategy string, progress Progress) Outcome
}

// Rollbacker puts an app's previous release back in service (Server.Rollbacker):
// steering back to a kept generation, or a deploy of the previous release.
type Rollbacker interface {
	Rollback(ctx context.Context, name string, progress Progress) Outcome
}

// Upgrader re-executes the supervisor binary (optional).
type Upgrader interface {
	Upgrade(ctx context.Context, progress Progress) Outcome
}

// Progress receives one human line per phase of a reload, deploy or upgrade.
type Progress func(msg string)

// Outcome is a Backend's verdict on a finished reload, deploy or upgrade.
type Outcome struct {
	// Result is "ok", "rolled_back" or "failed".
	Result string
	// Err is why it did not succeed; nil with Result "ok".
	Err error
	// Tail is the failed generation's last output lines.
	Tail []string
}

// Error is a Backend error with the code the client sees.
type Error struct {
	Code Code
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Limits bound what clients of the control socket may hold. A zero field
// takes its default (DefaultLimits).
type Limits struct {
	// MaxConns is how many connections are served at once. At the limit a
	// new connection takes the slot of the one waiting longest for a
	// request (idle keep-alive, or no complete request within 250 ms),
	// which is closed; it waits in the socket's backlog only while every
	// connection is inside a request.
	MaxConns int
	// ReadHeaderTimeout bounds reading a request's header, ReadTimeout the
	// whole request; IdleTimeout closes a keep-alive connection without a
	// request; WriteTimeout bounds each write of a response (a streamed
	// reload's events each get a fresh one, so a long reload is not cut).
	ReadHeaderTimeout, ReadTimeout, IdleTimeout, WriteTimeout time.Duration
}

// DefaultLimits returns the control server's limits unless Server.Limits
// sets others: 64 connections; 10 s for a request's header, 30 s for the
// whole request and for each write; 60 s of keep-alive idleness.
func DefaultLimits() Limits {
	return Limits{
		MaxConns:          64,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		IdleTimeout:       60 * time.Second,
		WriteTimeout:      30 * time.Second,
	}
}

// withDefaults fills the zero fields of l from DefaultLimits.
func (l Limits) withDefaults() Limits {
	d := DefaultLimits()
	if l.MaxConns > 0 {
		d.MaxConns = l.MaxConns
	}
	for _, f := range []struct{ set, dst *time.Duration }{
		{&l.ReadHeaderTimeout, &d.ReadHeaderTimeout}, {&l.ReadTimeout, &d.ReadTimeout},
		{&l.IdleTimeout, &d.IdleTimeout}, {&l.WriteTimeout, &d.WriteTimeout},
	} {
		if *f.set > 0 {
			*f.dst = *f.set
		}
	}
	return d
}

// Server serves the control API on a Unix socket.
type Server struct {
	Backend  Backend
	Upgrader Upgrader
	// Resolver expands the targets of status, act, signal and errors
	// (optional: without it a target is an app name or all).
	Resolver Resolver
	// Bulk serves start, stop and restart on several targets (optional).
	Bulk BulkBackend
	// Signaller serves the signal verb (optional).
	Signaller Signaller
	// Rollbacker serves rollback (optional).
	Rollbacker Rollbacker
	// Logs serves the logs verb (optional).
	Logs Logs
	// SupervisorLog serves the log verb (optional).
	SupervisorLog SupervisorLog
	// Config serves reread and update (optional).
	Config Configurer
	// Errors serves the errors verb (optional).
	Errors ErrorInbox
	Info   func() SupervisorInfo
	Logger *slog.Logger
	// Limits bound connections and their requests (zero fields: DefaultLimits).
	Limits Limits

	// Metrics serves GET /v1/metrics, the /metrics text (optional).
	Metrics http.Handler
	// Top serves GET /v1/top, the series `supctl top` reads in the same
	// text format (optional).
	Top http.Handler

	ln       *net.UnixListener
	path     string
	allowGID int // -1: none
	mu       sync.Mutex
	srv      *http.Server
	closed   bool
	once     sync.Once
}

// Listen creates the control socket at path (replacing a stale one; refusing
// a path where a live supervisor answers), mode 0600, or 0660 owned by group
// gid when gid is not -1. Members of that group, root and the supervisor's
// own uid may connect; everyone else is refused after an SO_PEERCRED check.
func (s *Server) Listen(path string, gid int) error {
	s.path = path
	s.allowGID = gid
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	mode := os.FileMode(0o600)
	if gid >= 0 {
		mode = 0o660
	}
	ln, err := sockfile.Listen(path, mode, gid)
	if errors.Is(err, sockfile.ErrInUse) {
		return fmt.Errorf("control socket %s: another supervisor is listening there: %w", path, err)
	}
	if err != nil {
		return fmt.Errorf("control socket %s: %w", path, err)
	}
	s.ln = ln
	return nil
}

// Serve answers requests until Close. It returns nil after Close.
func (s *Server) Serve() error {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/status/{app}", s.status)
	mux.HandleFunc("GET /v1/version", s.version)
	mux.HandleFunc("POST /v1/apps/{app}/start", s.simple)
	mux.HandleFunc("POST /v1/apps/{app}/stop", s.simple)
	mux.HandleFunc("POST /v1/apps/{app}/restart", s.simple)
	mux.HandleFunc("POST /v1/apps/{app}/reload", s.reload)
	mux.HandleFunc("POST /v1/apps/{app}/deploy", s.reload)
	mux.HandleFunc("POST /v1/apps/{app}/rollback", s.rollback)
	mux.HandleFunc("POST /v1/upgrade", s.upgrade)
	mux.HandleFunc("GET /v1/apps/{app}/logs", s.logs)
	mux.HandleFunc("GET /v1/logs", s.logsAll)
	mux.HandleFunc("GET /v1/metrics", s.metrics)
	mux.HandleFunc("GET /v1/top", s.top)
	mux.HandleFunc("POST /v1/apps/{app}/logs/reopen", s.reopenLogs)
	mux.HandleFunc("POST /v1/act/{verb}", s.bulk)
	mux.HandleFunc("GET /v1/reread", s.reread)
	mux.HandleFunc("POST /v1/update", s.update)
	mux.HandleFunc("POST /v1/signal/{sig}", s.signal)
	mux.HandleFunc("GET /v1/log", s.supervisorLog)
	mux.HandleFunc("GET /v1/errors", s.errors)
	lim := s.Limits.withDefaults()
	ln := newLimitListener(&credListener{UnixListener: s.ln, allowed: s.allowed, logger: s.Logger}, lim.MaxConns)
	srv := &http.Server{
		ConnState:         ln.track,
		Handler:           bounded(jsonErrors(mux), lim.WriteTimeout),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		IdleTimeout:       lim.IdleTimeout,
		WriteTimeout:      lim.WriteTimeout,
		ErrorLog:          slog.NewLogLogger(s.Logger.Handler(), slog.LevelDebug),
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.srv = srv
	s.mu.Unlock()
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// maxRequestBody bounds a request's body; no verb takes one.
const maxRequestBody = 64 << 10

// bounded reads (and drops) the request's body under the server's read
// deadline, then lifts that deadline: a verb may take longer than
// ReadTimeout (a stop waits for the app), and the deadline expiring under a
// running handler would cancel its context. The connection still ends the
// handler's context when the client goes away. Each write of the response
// gets a deadline writeTimeout from then, so a slow reader cannot hold the
// handler while a streamed reload of any length still reaches the client.
func bounded(h http.Handler, writeTimeout time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		dw := &deadlineWriter{ResponseWriter: w, rc: http.NewResponseController(w), d: writeTimeout}
		body := http.MaxBytesReader(w, r.Body, maxRequestBody)
		if _, err := io.Copy(io.Discard, body); err != nil {
			writeError(dw, http.StatusBadRequest, CodeBadRequest, fmt.Sprintf("reading the request body: %v", err))
			return
		}
		// A connection whose deadline cannot change is gone: the handler's
		// context ends and its writes fail, nothing more to do.
		_ = dw.rc.SetReadDeadline(time.Time{})
		h.ServeHTTP(dw, r)
	})
}

// deadlineWriter gives every write and flush of a response its own write
// deadline, d from the moment it starts.
type deadlineWriter struct {
	http.ResponseWriter
	rc *http.ResponseController
	d  time.Duration
}

// extend moves the write deadline; an error means the connection is gone,
// which the write that follows reports.
func (w *deadlineWriter) extend() { _ = w.rc.SetWriteDeadline(time.Now().Add(w.d)) }

func (w *deadlineWriter) Write(b []byte) (int, error) {
	w.extend()
	return w.ResponseWriter.Write(b)
}

// Flush sends what is buffered; a failure shows in the next write.
func (w *deadlineWriter) Flush() {
	w.extend()
	_ = w.rc.Flush()
}

// Unwrap lets http.ResponseController reach the connection.
func (w *deadlineWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// jsonErrors answers unknown routes (404) and wrong methods (405) in JSON,
// like every other error of the API. A path that is not clean (//, ., ..)
// is an unknown route: the mux would answer it with a redirect, not JSON.
func jsonErrors(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h, pattern := mux.Handler(r)
		if p := r.URL.EscapedPath(); pattern != "" && path.Clean(p) == p {
			mux.ServeHTTP(w, r)
			return
		}
		rec := &statusRecorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		if allow := rec.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		if rec.status == http.StatusMethodNotAllowed {
			writeError(w, rec.status, CodeBadRequest, fmt.Sprintf("method %s not allowed for %s (allowed: %s)", r.Method, r.URL.Path, rec.header.Get("Allow")))
			return
		}
		writeError(w, http.StatusNotFound, CodeNotFound, fmt.Sprintf("no such verb: %s %s (verbs: %s)", r.Method, r.URL.Path, strings.Join(Verbs, ", ")))
	})
}

type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header         { return r.header }
func (r *statusRecorder) Write(b []byte) (int, error) { return len(b), nil }
func (r *statusRecorder) WriteHeader(status int)      { r.status = status }

// Close stops accepting, ends open connections and removes the socket; safe
// to call twice, and before or while Serve runs.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		srv := s.srv
		s.mu.Unlock()
		if srv != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err = srv.Shutdown(ctx)
			if err != nil {
				err = srv.Close()
			}
		} else if s.ln != nil {
			err = s.ln.Close()
		}
	})
	return err
}

// allowed says whether a peer may use the API: root, the supervisor's own
// uid, or (with a control group) a process whose primary or supplementary
// groups include it.
func (s *Server) allowed(cred *unix.Ucred) bool {
	if cred.Uid == 0 || int(cred.Uid) == os.Geteuid() {
		return true
	}
	if s.allowGID < 0 {
		return false
	}
	if int(cred.Gid) == s.allowGID {
		return true
	}
	return processInGroup(int(cred.Pid), s.allowGID)
}

// processInGroup reads the supplementary groups of pid from /proc.
func processInGroup(pid, gid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			for _, f := range strings.Fields(rest) {
				if n, err := strconv.Atoi(f); err == nil && n == gid {
					return true
				}
			}
		}
	}
	return false
}

// credListener refuses connections from peers that may not use the API: it
// answers them 403 and closes, so they learn why.
type credListener struct {
	*net.UnixListener
	allowed func(*unix.Ucred) bool
	logger  *slog.Logger
}

func (l *credListener) Accept() (net.Conn, error) {
	for {
		c, err := l.UnixListener.AcceptUnix()
		if err != nil {
			return nil, err
		}
		cred, err := peerCred(c)
		if err == nil && l.allowed(cred) {
			return c, nil
		}
		if err != nil {
			l.logger.Warn("control: cannot read peer credentials", "err", err)
		} else {
			l.logger.Warn("control: refused connection", "uid", cred.Uid, "gid", cred.Gid, "pid", cred.Pid)
		}
		go refuse(c)
	}
}

func refuse(c net.Conn) {
	defer c.Close()
	body := `{"error":"permission denied: this user may not use the supervisor's control socket","code":"forbidden"}` + "\n"
	// Read the request first: closing with it unread would reset the
	// connection, and the peer would never see why it was refused.
	_ = c.SetDeadline(time.Now().Add(time.Second)) // best effort on a refused peer
	if req, err := http.ReadRequest(bufio.NewReader(io.LimitReader(c, 64<<10))); err == nil {
		_ = req.Body.Close() // nothing to keep from a refused peer
	}
	_, _ = fmt.Fprintf(c, "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(body), body) // best effort
}

func peerCred(c *net.UnixConn) (*unix.Ucred, error) {
	raw, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil {
		return nil, err
	}
	return cred, cerr
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the peer may be gone; nothing to do about it
}

func writeError(w http.ResponseWriter, status int, code Code, msg string) {
	writeJSON(w, status, ErrorResponse{Error: msg, Code: code})
}

// classify maps a backend error to an HTTP status and a code.
func classify(err error) (int, Code) {
	var e *Error
	if !errors.As(err, &e) {
		return http.StatusInternalServerError, CodeFailed
	}
	switch e.Code {
	case CodeNotFound:
		return http.StatusNotFound, e.Code
	case CodeBusy, CodeNotRunning:
		return http.StatusConflict, e.Code
	case CodeBadRequest:
		return http.StatusBadRequest, e.Code
	}
	return http.StatusInternalServerError, e.Code
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	resp := StatusResponse{Apps: s.Backend.Status()}
	if s.Info != nil {
		resp.Supervisor = s.Info()
	}
	if !s.statusTargets(w, r, &resp) {
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	v := VersionResponse{PID: os.Getpid()}
	if s.Info != nil {
		v.Version = s.Info().Version
	}
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) simple(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	verb := r.URL.Path[strings.LastIndexByte(r.URL.Path, '/')+1:]
	var err error
	switch verb {
	case "start":
		err = s.Backend.StartApp(r.Context(), name)
	case "stop":
		err = s.Backend.StopApp(r.Context(), name)
	case "restart":
		err = s.Backend.RestartApp(r.Context(), name)
	}
	if err != nil {
		status, code := classify(err)
		writeError(w, status, code, fmt.Sprintf("%s %s: %v", verb, name, err))
		return
	}
	writeJSON(w, http.StatusOK, OKResponse{OK: true, Message: fmt.Sprintf("%s %s: ok", verb, name)})
}

// stream writes NDJSON events, flushing each line.
type stream struct {
	mu sync.Mutex
	w  http.ResponseWriter
	f  http.Flusher
}

func newStream(w http.ResponseWriter) *stream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	f, _ := w.(http.Flusher) // every net/http ResponseWriter is one
	return &stream{w: w, f: f}
}

func (s *stream) send(e Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.Time = time.Now()
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	_, _ = s.w.Write(append(b, '\n')) // a gone client must not stop the reload
	if s.f != nil {
		s.f.Flush()
	}
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("app")
	deploy := strings.HasSuffix(r.URL.Path, "/deploy")
	strategy := r.URL.Query().Get("strategy")
	if err := s.Backend.CheckStrategy(strategy); err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	release := r.URL.Query().Get("release")
	if deploy && release == "" {
		writeError(w, http.StatusBadRequest, CodeBadRequest, "deploy needs ?release=DIR")
		return
	}
	// The reload continues if the client goes away: a half-done swap is worse.
	ctx, err := canaryQuery(context.WithoutCancel(r.Context()), r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, CodeBadRequest, err.Error())
		return
	}
	st := newStream(w)
	start := time.Now()
	progress := func(msg string) { st.send(Event{Phase: msg}) }
	var out Outcome
	if deploy {
		out = s.Backend.Deploy(ctx, name, release, strategy, progress)
	} else {
		out = s.Backend.Reload(ctx, name, strategy, progress)
	}
	st.send(finalEvent(out, time.Since(start)))
}

// finalEvent is the Done line of a stream that ended with out.
func finalEvent(out Outcome, took time.Duration) Event {
	ev := Event{Done: true, OK: out.Err == nil, Result: out.Result, Tail: out.Tail, Duration: took}
	if out.Err != nil {
		ev.Error = out.Err.Error()
		_, ev.Code = classify(out.Err)
	}
	return ev
}

func (s *Server) rollback(w http.ResponseWriter, r *http.Request) {
	rb := s.Rollbacker
	if rb == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "rollback is not available in this build")
		return
	}
	name := r.PathValue("app")
	streamOutcome(w, func(progress Progress) Outcome {
		// The rollback continues if the client goes away, as a reload does.
		return rb.Rollback(context.WithoutCancel(r.Context()), name, progress)
	})
}

func (s *Server) upgrade(w http.ResponseWriter, r *http.Request) {
	if s.Upgrader == nil {
		writeError(w, http.StatusNotImplemented, CodeUnavailable, "self-upgrade is not available in this build")
		return
	}
	streamOutcome(w, func(progress Progress) Outcome {
		return s.Upgrader.Upgrade(context.WithoutCancel(r.Context()), progress)
	})
}
