package control

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/reload/strategy"
)

// backend is a scripted Backend: the API's own mechanics are under test.
type backend struct{ reloadOut Outcome }

func (b *backend) Status() []AppStatus {
	return []AppStatus{{Name: "web", State: StateRunning, MasterPID: 42}, {Name: "worker", State: StateBackoff}}
}

func (b *backend) check(name string) error {
	if name != "web" && name != "worker" {
		return &Error{Code: CodeNotFound, Err: fmt.Errorf("no such app: %q", name)}
	}
	return nil
}
func (b *backend) StartApp(_ context.Context, n string) error   { return b.check(n) }
func (b *backend) StopApp(_ context.Context, n string) error    { return b.check(n) }
func (b *backend) RestartApp(_ context.Context, n string) error { return b.check(n) }
func (b *backend) CheckStrategy(name string) error {
	if name == "" {
		return nil
	}
	_, err := strategy.Parse(name)
	return err
}
func (b *backend) Reload(_ context.Context, n, _ string, p Progress) Outcome {
	if err := b.check(n); err != nil {
		return Outcome{Result: "failed", Err: err}
	}
	p("phase one")
	p("phase two")
	if b.reloadOut.Result == "" {
		return Outcome{Result: "ok"}
	}
	return b.reloadOut
}
func (b *backend) Deploy(ctx context.Context, n, _, s string, p Progress) Outcome {
	return b.Reload(ctx, n, s, p)
}

func serve(t testing.TB, b Backend) (*Server, string) {
	t.Helper()
	return serveLimited(t, b, Limits{})
}

// serveLimited serves b on a fresh socket with the limits lim.
func serveLimited(t testing.TB, b Backend, lim Limits) (*Server, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "c.sock")
	s := &Server{Backend: b, Info: func() SupervisorInfo { return SupervisorInfo{Version: "test"} }, Limits: lim}
	s.Logs, _ = b.(Logs) // nil for a backend without logs
	s.Metrics, _ = b.(http.Handler)
	s.Errors, _ = b.(ErrorInbox)
	s.Resolver, _ = b.(Resolver)
	s.Bulk, _ = b.(BulkBackend)
	s.Signaller, _ = b.(Signaller)
	s.Rollbacker, _ = b.(Rollbacker)
	if err := s.Listen(path, -1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return s, path
}

func TestSocketModeAndStaleReplacement(t *testing.T) {
	_, path := serve(t, &backend{})
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %o, want 0600", st.Mode().Perm())
	}
	// A second server on the same live path is refused.
	s2 := &Server{Backend: &backend{}}
	if err := s2.Listen(path, -1); err == nil || !strings.Contains(err.Error(), "another supervisor") {
		t.Errorf("second Listen: %v", err)
	}
	// A stale socket file (nobody listening) is replaced.
	dir := filepath.Dir(path)
	stale := filepath.Join(dir, "stale.sock")
	l, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	l.Close()
	s3 := &Server{Backend: &backend{}}
	if err := s3.Listen(stale, -1); err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s3.Close()
}

func TestClientVerbs(t *testing.T) {
	b := &backend{}
	_, path := serve(t, b)
	c := NewClient(path)
	ctx := context.Background()
	st, err := c.Status(ctx, "")
	if err != nil || len(st.Apps) != 2 || st.Supervisor.Version != "test" {
		t.Fatalf("status: %+v %v", st, err)
	}
	one, err := c.Status(ctx, "web")
	if err != nil || len(one.Apps) != 1 || one.Apps[0].MasterPID != 42 || one.Apps[0].State != StateRunning {
		t.Fatalf("status web: %+v %v", one, err)
	}
	var ae *APIError
	if _, err := c.Status(ctx, "nope"); !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "not_found" {
		t.Errorf("status nope: %v", err)
	}
	for _, verb := range []string{"start", "stop", "restart"} {
		if r, err := c.Act(ctx, verb, "web"); err != nil || !r.OK {
			t.Errorf("%s: %+v %v", verb, r, err)
		}
		if _, err := c.Act(ctx, verb, "nope"); !errors.As(err, &ae) || ae.Code != "not_found" {
			t.Errorf("%s nope: %v", verb, err)
		}
	}
	var phases []string
	ev, err := c.Reload(ctx, "web", "usr2", "", func(e Event) { phases = append(phases, e.Phase) })
	if err != nil || !ev.OK || len(phases) != 2 {
		t.Errorf("reload: %+v %v %q", ev, err, phases)
	}
	b.reloadOut = Outcome{Result: "rolled_back", Err: errors.New("new generation exited: exit 3 (rolled back)"), Tail: []string{"Traceback"}}
	ev, err = c.Reload(ctx, "web", "", "", nil)
	if err != nil || ev.OK || ev.Result != "rolled_back" || len(ev.Tail) != 1 || ev.Code != CodeFailed {
		t.Errorf("failed reload: %+v %v", ev, err)
	}
	b.reloadOut = Outcome{Result: "failed", Err: &Error{Code: CodeBusy, Err: errors.New("web: a reload is in progress")}}
	ev, _ = c.Reload(ctx, "web", "", "", nil)
	if ev.Code != "busy" {
		t.Errorf("busy reload: %+v", ev)
	}
	if _, err := c.Reload(ctx, "web", "bogus", "", nil); !errors.As(err, &ae) || ae.Code != "bad_request" {
		t.Errorf("bad strategy: %v", err)
	}
	if _, err := c.Upgrade(ctx, nil); !errors.As(err, &ae) || ae.Status != 501 {
		t.Errorf("upgrade without upgrader: %v", err)
	}
}

func TestVerbAllowList(t *testing.T) {
	_, path := serve(t, &backend{})
	c := NewClient(path)
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/v1/apps/web/start", 405},
		{"POST", "/v1/apps/web/exec", 404},
		{"POST", "/v1/shutdown", 404},
		{"DELETE", "/v1/status", 405},
		{"GET", "/", 404},
	} {
		_, err := c.do(context.Background(), tc.method, tc.path)
		var ae *APIError
		if !errors.As(err, &ae) || ae.Status != tc.status {
			t.Errorf("%s %s: %v, want HTTP %d", tc.method, tc.path, err, tc.status)
		}
	}
}

func TestConnectError(t *testing.T) {
	c := NewClient(filepath.Join(t.TempDir(), "absent.sock"))
	_, err := c.Status(context.Background(), "")
	var ce *ConnectError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *ConnectError", err)
	}
}

func TestAllowed(t *testing.T) {
	s := &Server{allowGID: -1}
	self := uint32(os.Geteuid())
	for _, tc := range []struct {
		name  string
		cred  unix.Ucred
		group int
		want  bool
	}{
		{"root", unix.Ucred{Uid: 0, Gid: 0, Pid: 1}, -1, true},
		{"same uid", unix.Ucred{Uid: self, Gid: 5, Pid: 1}, -1, true},
		{"other uid", unix.Ucred{Uid: 65534, Gid: 65534, Pid: 1}, -1, self == 65534},
		{"other uid in group", unix.Ucred{Uid: 65534, Gid: 65534, Pid: 1}, 65534, true},
		{"other uid other group", unix.Ucred{Uid: 65534, Gid: 100, Pid: 1 << 30}, 65534, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.allowGID = tc.group
			if got := s.allowed(&tc.cred); got != tc.want {
				t.Errorf("allowed = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestStreamSurvivesSlowClient(t *testing.T) {
	// A reload keeps going when the client disconnects mid-stream.
	done := make(chan struct{})
	b := &slowBackend{backend: backend{}, done: done}
	_, path := serve(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = NewClient(path).Reload(ctx, "web", "", "", func(Event) { cancel() })
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("reload did not finish after the client went away")
	}
}

type slowBackend struct {
	backend
	done chan struct{}
}

func (b *slowBackend) Reload(ctx context.Context, n, s string, p Progress) Outcome {
	defer close(b.done)
	p("first")
	if err := ctx.Err(); err != nil {
		return Outcome{Result: "failed", Err: err}
	}
	for i := 0; i < 50; i++ {
		p("more")
	}
	if err := ctx.Err(); err != nil {
		return Outcome{Result: "failed", Err: err}
	}
	return Outcome{Result: "ok"}
}
