package supctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/reload/strategy"
)

type backend struct{}

func (backend) Status() []control.AppStatus {
	return []control.AppStatus{{
		Name: "web", Kind: "gunicorn", State: control.StateRunning, MasterPID: 4242, WorkerPIDs: []int{1, 2},
		Started: time.Now().Add(-time.Minute), Restarts: 2, Generation: 3,
		LastExit:  &control.Exit{Code: -1, Signal: 9},
		Listeners: []control.Listener{{Address: "tcp://127.0.0.1:8000"}},
	}}
}

// workerBackend is backend with a second app, worker, whose reload rolls back.
type workerBackend struct{ backend }

func (b workerBackend) Status() []control.AppStatus {
	return append(b.backend.Status(), control.AppStatus{Name: "worker", Kind: "process", State: control.StateRunning, MasterPID: 4343})
}
func (backend) StartApp(_ context.Context, n string) error { return check(n) }
func (backend) StopApp(_ context.Context, n string) error  { return check(n) }
func (backend) RestartApp(_ context.Context, n string) error {
	return check(n)
}
func (backend) CheckStrategy(name string) error {
	if name == "" {
		return nil
	}
	_, err := strategy.Parse(name)
	return err
}
func (backend) Reload(_ context.Context, n, _ string, p control.Progress) control.Outcome {
	if err := check(n); err != nil {
		return control.Outcome{Result: "failed", Err: err}
	}
	p("starting new generation")
	if n == "worker" {
		return control.Outcome{Result: "rolled_back", Err: errors.New("exited: exit 3 (rolled back)"), Tail: []string{"RuntimeError: boom"}}
	}
	return control.Outcome{Result: "ok"}
}
func (b backend) Deploy(ctx context.Context, n, _, s string, p control.Progress) control.Outcome {
	return b.Reload(ctx, n, s, p)
}

func check(n string) error {
	if n != "web" && n != "worker" {
		return &control.Error{Code: control.CodeNotFound, Err: fmt.Errorf("no such app: %q", n)}
	}
	return nil
}

// serveBackend serves b on a control socket in a fresh directory until
// the test ends, points SUPCTL_SOCKET at it and returns the directory.
func serveBackend(t *testing.T, b control.Backend) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "supctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	srv := &control.Server{Backend: b}
	srv.Errors, _ = b.(control.ErrorInbox) // nil for a backend without inboxes
	srv.Resolver, _ = b.(control.Resolver)
	srv.Bulk, _ = b.(control.BulkBackend)
	srv.Signaller, _ = b.(control.Signaller)
	srv.Rollbacker, _ = b.(control.Rollbacker)
	if err := srv.Listen(sock, -1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	t.Setenv("SUPCTL_SOCKET", sock)
	return dir
}

func TestExitCodes(t *testing.T) {
	dir := serveBackend(t, workerBackend{})
	for _, tc := range []struct {
		args []string
		code int
		out  string
	}{
		{[]string{"status"}, 0, "signal 9 (SIGKILL)"},
		{[]string{"status", "web", "--json"}, 0, `"master_pid": 4242`},
		{[]string{"status", "nope"}, 4, ""},
		{[]string{"restart", "web"}, 0, "restart web: ok"},
		{[]string{"stop"}, 2, ""},
		{[]string{"reload", "web"}, 0, "reload web: ok"},
		{[]string{"reload", "worker", "--strategy", "usr2"}, 1, "RuntimeError: boom"},
		{[]string{"reload", "web", "--strategy", "bogus"}, 2, ""},
		{[]string{"deploy", "web"}, 2, ""},
		{[]string{"deploy", "web", "/srv/rel"}, 0, "deploy web: ok"},
		{[]string{"rollback"}, 2, ""},
		{[]string{"rollback", "web", "worker"}, 2, ""},
		{[]string{"rollback", "web"}, 1, ""}, // this backend cannot roll back (HTTP 501)
		{[]string{"frobnicate"}, 2, ""},
		{[]string{}, 2, ""},
		{[]string{"-s", filepath.Join(dir, "absent.sock"), "status"}, 4, ""},
		{[]string{"-s", filepath.Join(dir, "absent.sock"), "restart", "web"}, 3, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			err := Run(tc.args, &out, &errb)
			if got := exitcode.Code(err); got != tc.code {
				t.Fatalf("exit %d, want %d (err %v, stderr %s)", got, tc.code, err, errb.String())
			}
			if tc.out != "" && !strings.Contains(out.String(), tc.out) {
				t.Errorf("output %q lacks %q", out.String(), tc.out)
			}
			var ee *exitcode.Error
			if err != nil && !errors.As(err, &ee) {
				t.Errorf("error %T carries no exit code", err)
			}
		})
	}
}

// releaseRecorder is backend recording the release directory of each deploy.
type releaseRecorder struct {
	backend
	releases chan string
}

func (b releaseRecorder) Deploy(ctx context.Context, n, release, s string, p control.Progress) control.Outcome {
	b.releases <- release
	return b.backend.Deploy(ctx, n, release, s, p)
}

// TestDeploySendsAbsolutePath: a relative release directory is resolved
// against supctl's working directory, not the supervisor's.
func TestDeploySendsAbsolutePath(t *testing.T) {
	b := releaseRecorder{releases: make(chan string, 4)}
	serveBackend(t, b)
	dir := t.TempDir()
	t.Chdir(dir)
	for _, tc := range []struct{ arg, want string }{
		{"releases/v2", filepath.Join(dir, "releases", "v2")},
		{"./releases/../v3/", filepath.Join(dir, "v3")},
		{"/srv/rel", "/srv/rel"},
	} {
		var out, errb bytes.Buffer
		if err := Run([]string{"deploy", "web", tc.arg}, &out, &errb); err != nil {
			t.Fatalf("deploy web %s: %v (%s)", tc.arg, err, errb.String())
		}
		if got := <-b.releases; got != tc.want {
			t.Errorf("deploy web %s sent release %q, want %q", tc.arg, got, tc.want)
		}
	}
}
