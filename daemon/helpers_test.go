package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
)

// daemonOpts describes an in-process supervisor of startDaemon.
type daemonOpts struct {
	// HTTP is [supervisor] http ("" disables the endpoint).
	HTTP string
	// ShutdownTimeout is [supervisor] shutdown_timeout ("" keeps the
	// default).
	ShutdownTimeout string
	// Body is the rest of the configuration: the app and group tables.
	Body string
	// Log receives the daemon's log (nil discards it).
	Log io.Writer
}

// daemonRun is a Daemon running in-process on a configuration file in a
// temporary directory.
type daemonRun struct {
	D *Daemon
	// Dir is the temporary directory; Sock the control socket in it,
	// Config the configuration file.
	Dir, Sock, Config string
	// Started is the time just before Run was called.
	Started time.Time
	cancel  context.CancelFunc
	// exited is closed once Run returned err.
	exited chan struct{}
	err    error
}

// startDaemon writes the configuration o describes (control socket and
// run_dir in a temporary directory), loads it and calls Run in a goroutine.
// The test's cleanup stops it (see Stop) and fails the test unless Run
// returned nil.
func startDaemon(t *testing.T, o daemonOpts) *daemonRun {
	t.Helper()
	dir := t.TempDir()
	r := &daemonRun{Dir: dir, Sock: filepath.Join(dir, "c.sock"), Config: filepath.Join(dir, "supervisor.toml"), exited: make(chan struct{})}
	r.WriteConfig(t, o.Body, o.HTTP, o.ShutdownTimeout)
	cfg, err := config.Load(r.Config)
	if err != nil {
		t.Fatal(err)
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	r.D = &Daemon{Config: cfg, Logger: slog.New(slog.NewTextHandler(o.Log, nil)), Stdout: io.Discard}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.Started = time.Now()
	go func() {
		r.err = r.D.Run(ctx)
		close(r.exited)
	}()
	t.Cleanup(func() {
		if err := r.Stop(60 * time.Second); err != nil {
			t.Errorf("Run = %v", err)
		}
	})
	return r
}

// WriteConfig writes the configuration file: the [supervisor] table
// (control socket and run_dir in Dir, http and, unless "", shutdown_timeout)
// followed by body.
func (r *daemonRun) WriteConfig(t *testing.T, body, http, shutdown string) {
	t.Helper()
	head := fmt.Sprintf("[supervisor]\ncontrol_socket = %q\nhttp = %q\nrun_dir = %q\n", r.Sock, http, r.Dir+"/run")
	if shutdown != "" {
		head += fmt.Sprintf("shutdown_timeout = %q\n", shutdown)
	}
	if err := os.WriteFile(r.Config, []byte(head+"\n"+body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// errRunning is what Stop returns when Run did not return in time.
var errRunning = errors.New("Run did not return in time")

// Stop cancels Run's context and returns what Run returned, or errRunning
// if it did not return within limit. It is safe to call more than once.
func (r *daemonRun) Stop(limit time.Duration) error {
	r.cancel()
	return r.Wait(limit)
}

// Wait waits up to limit for Run to return by itself and returns its
// result, or errRunning.
func (r *daemonRun) Wait(limit time.Duration) error {
	select {
	case <-r.exited:
		return r.err
	case <-time.After(limit):
		return errRunning
	}
}

// Exited reports whether Run has returned.
func (r *daemonRun) Exited() bool {
	select {
	case <-r.exited:
		return true
	default:
		return false
	}
}

// runDaemon runs a supervisor in-process on the configuration text body
// (after a [supervisor] table with a temporary control socket and run_dir,
// http = "") until the test ends, and returns the control socket's path.
func runDaemon(t *testing.T, body string) (string, *Daemon) {
	t.Helper()
	r := startDaemon(t, daemonOpts{Body: body})
	return r.Sock, r.D
}

// runDaemonLog is runDaemon logging to logw; it also returns the
// configuration file's path.
func runDaemonLog(t *testing.T, body string, logw io.Writer) (string, string, *Daemon) {
	t.Helper()
	r := startDaemon(t, daemonOpts{Body: body, Log: logw})
	return r.Sock, r.Config, r.D
}
