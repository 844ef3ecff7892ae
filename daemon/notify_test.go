package daemon

import (
	"errors"
	"net"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/gunisup/supervisor/sdnotify"
)

// notifySocket is a real unixgram socket standing in for systemd's.
type notifySocket struct {
	t    *testing.T
	conn *net.UnixConn
	path string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &notifySocket{t: t, conn: conn, path: path}
}

// next returns the next datagram; a send returns only once the datagram is
// queued, so the deadline is a hang guard.
func (n *notifySocket) next() string {
	n.t.Helper()
	if err := n.conn.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		n.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	k, _, err := n.conn.ReadFromUnix(buf)
	if err != nil {
		n.t.Fatalf("read datagram: %v", err)
	}
	return string(buf[:k])
}

// none checks that nothing more was sent.
func (n *notifySocket) none() {
	n.t.Helper()
	if err := n.conn.SetReadDeadline(time.Now()); err != nil {
		n.t.Fatal(err)
	}
	buf := make([]byte, 4096)
	if k, _, err := n.conn.ReadFromUnix(buf); err == nil {
		n.t.Errorf("unexpected datagram %q", buf[:k])
	}
}

func TestNotifyStateTransitions(t *testing.T) {
	type step struct {
		allReady, reloading bool
		status              string
		wantPhase           sdPhase
		wantFirst           bool
		// want are the datagrams, as regular expressions, in order.
		want []string
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"starting until every app is ready", []step{
			{false, false, "apps: 1 starting", sdStarting, false, []string{`^STATUS=apps: 1 starting$`}},
			{false, false, "apps: 1 backoff", sdStarting, false, []string{`^STATUS=apps: 1 backoff$`}},
			{true, false, "apps: 1 running", sdReady, true, []string{`^READY=1\nSTATUS=apps: 1 running$`}},
			{true, false, "apps: 1 running", sdReady, false, []string{`^STATUS=apps: 1 running$`}},
		}},
		{"a reload is bracketed by RELOADING=1 and READY=1", []step{
			{true, false, "apps: 1 running", sdReady, true, []string{`^READY=1\nSTATUS=apps: 1 running$`}},
			{true, true, "apps: 1 running", sdReloading, false, []string{`^RELOADING=1\nMONOTONIC_USEC=[0-9]+$`, `^STATUS=apps: 1 running$`}},
			{true, true, "apps: 2 running", sdReloading, false, []string{`^STATUS=apps: 2 running$`}},
			{true, false, "apps: 1 running", sdReady, false, []string{`^READY=1\nSTATUS=apps: 1 running$`}},
		}},
		{"a reload before the first READY=1 is not announced", []step{
			{false, true, "apps: 1 starting", sdStarting, false, []string{`^STATUS=apps: 1 starting$`}},
			{true, false, "apps: 1 running", sdReady, true, []string{`^READY=1\nSTATUS=apps: 1 running$`}},
		}},
		{"an app failing after ready keeps ready", []step{
			{true, false, "apps: 1 running", sdReady, true, []string{`^READY=1\nSTATUS=apps: 1 running$`}},
			{false, false, "apps: 1 backoff", sdReady, false, []string{`^STATUS=apps: 1 backoff$`}},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := listenNotify(t)
			s := &notifyState{notifier: sdnotify.Restore(n.path, 0)}
			for i, st := range tc.steps {
				first, err := s.apps(st.allReady, st.reloading, st.status)
				if err != nil || first != st.wantFirst || s.phase != st.wantPhase || s.status != st.status {
					t.Fatalf("step %d: first=%v err=%v phase=%v status=%q; want first=%v phase=%v status=%q",
						i, first, err, s.phase, s.status, st.wantFirst, st.wantPhase, st.status)
				}
				for _, re := range st.want {
					if got := n.next(); !regexp.MustCompile(re).MatchString(got) {
						t.Errorf("step %d: datagram %q, want %s", i, got, re)
					}
				}
				n.none()
			}
		})
	}
}

func TestNotifyStateStoppingIsFinal(t *testing.T) {
	n := listenNotify(t)
	s := &notifyState{notifier: sdnotify.Restore(n.path, time.Second)}
	if _, err := s.apps(true, false, "apps: 1 running"); err != nil {
		t.Fatal(err)
	}
	n.next()
	if err := s.ping(); err != nil {
		t.Fatal(err)
	}
	if got := n.next(); got != "WATCHDOG=1" {
		t.Errorf("ping sent %q, want WATCHDOG=1", got)
	}
	if err := s.stopping(); err != nil || s.phase != sdStopping {
		t.Fatalf("stopping: %v, phase %v", err, s.phase)
	}
	if got := n.next(); got != "STOPPING=1" {
		t.Errorf("stopping sent %q, want STOPPING=1", got)
	}
	if first, err := s.apps(true, true, "apps: 1 stopping"); first || err != nil || s.phase != sdStopping {
		t.Errorf("apps after stopping: %v %v, phase %v", first, err, s.phase)
	}
	if err := s.ping(); err != nil {
		t.Fatal(err)
	}
	n.none()
}

func TestNotifyStateWithoutSystemd(t *testing.T) {
	s := &notifyState{}
	if first, err := s.apps(true, false, "apps: 1 running"); !first || err != nil || s.phase != sdReady {
		t.Errorf("apps: %v %v, phase %v", first, err, s.phase)
	}
	if err := errors.Join(s.ping(), s.stopping()); err != nil {
		t.Errorf("nil notifier: %v", err)
	}
	if c, stop := s.watchdogTicker(); c != nil {
		stop()
		t.Error("a watchdog ticker without systemd")
	}
}

func TestNotifyStateWatchdogTicks(t *testing.T) {
	n := listenNotify(t)
	s := &notifyState{notifier: sdnotify.Restore(n.path, 10*time.Millisecond)}
	c, stop := s.watchdogTicker()
	defer stop()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatal("the watchdog ticker never ticked")
	}
}

func TestNotifyStateReportsSendErrors(t *testing.T) {
	s := &notifyState{notifier: sdnotify.Restore(filepath.Join(t.TempDir(), "gone.sock"), 0)}
	if _, err := s.apps(false, false, "apps: 1 starting"); err == nil {
		t.Error("a STATUS= to a socket nobody listens on returned nil")
	}
	if first, err := s.apps(true, false, "apps: 1 running"); !first || err == nil || s.phase != sdReady {
		t.Errorf("READY=1 to a gone socket: first=%v err=%v phase=%v; the phase moves, the error is reported", first, err, s.phase)
	}
}
