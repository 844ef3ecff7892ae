package daemon

import (
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/testenv"
)

func TestSignalGate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	type step struct {
		sig  os.Signal
		at   time.Time
		want bool
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{"a second TERM 50 ms later is the same", []step{{syscall.SIGTERM, ms(0), true}, {syscall.SIGTERM, ms(50), false}}},
		{"INT then TERM are one stop", []step{{syscall.SIGINT, ms(0), true}, {syscall.SIGTERM, ms(10), false}, {syscall.SIGQUIT, ms(999), false}}},
		{"a TERM after the window counts", []step{{syscall.SIGTERM, ms(0), true}, {syscall.SIGTERM, ms(1000), true}, {syscall.SIGTERM, ms(1500), false}, {syscall.SIGTERM, ms(2001), true}}},
		{"dropped repeats do not extend the window", []step{{syscall.SIGTERM, ms(0), true}, {syscall.SIGTERM, ms(900), false}, {syscall.SIGTERM, ms(1100), true}}},
		{"only stop signals repeat", []step{{syscall.SIGTERM, ms(0), true}, {syscall.SIGHUP, ms(1), true}, {syscall.SIGUSR2, ms(2), true}, {syscall.SIGHUP, ms(3), true}, {syscall.SIGUSR2, ms(4), true}, {syscall.SIGINT, ms(5), false}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g signalGate
			for i, s := range tt.steps {
				if got := g.pass(s.sig, s.at); got != s.want {
					t.Errorf("step %d: pass(%v, +%v) = %v, want %v", i, s.sig, s.at.Sub(t0), got, s.want)
				}
			}
		})
	}
}

// TestRunTwoTermsDrain: two TERMs 50 ms apart (a terminal's Ctrl-C
// forwarded by make, `kill -TERM -PGID`) are one stop: the app, which
// takes its time to stop, is drained and Run returns nil, not 128+15.
func TestRunTwoTermsDrain(t *testing.T) {
	// While this test is notified of TERM too, a TERM never kills the
	// test binary, whatever Run has registered at the time.
	mine := make(chan os.Signal, 4)
	signal.Notify(mine, syscall.SIGTERM)
	defer signal.Stop(mine)

	release := filepath.Join(t.TempDir(), "release")
	logs := &testenv.SyncBuffer{}
	// The app stops only once the test creates the release file.
	r := startDaemon(t, daemonOpts{ShutdownTimeout: "60s", Log: logs, Body: `
[app.sleeper]
kind = "process"
allow_root = true
command = ["/bin/sh", "-c", "trap 'while [ ! -e ` + release + ` ]; do sleep 0.02; done; exit 0' TERM; while :; do sleep 0.02; done"]
stop_timeout = "60s"
`})
	// On failure, let the app go before the cleanup waits for Run.
	defer func() { _ = os.WriteFile(release, nil, 0o644) }() // may exist already
	waitRunning(t, control.NewClient(r.Sock), r)

	for i := range 2 {
		if i == 1 {
			time.Sleep(50 * time.Millisecond) // the scenario: a second TERM 50 ms after the first
		}
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		<-mine
	}
	waitLog(t, logs, "signal repeated within 1s: counted once", r)
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := r.Wait(30 * time.Second); err != nil {
		t.Errorf("Run after two TERMs 50 ms apart, the app released 30 s ago at most = %v, want nil (a graceful stop)", err)
	}
	if out := logs.String(); strings.Contains(out, "second stop signal") {
		t.Errorf("the repeated TERM killed the apps:\n%s", out)
	}
}

// waitLog polls logs until it contains substr, failing after 30 s or when
// Run returns first.
func waitLog(t *testing.T, logs *testenv.SyncBuffer, substr string, r *daemonRun) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for !strings.Contains(logs.String(), substr) {
		select {
		case <-r.exited:
			t.Fatalf("Run returned (%v) before logging %q:\n%s", r.err, substr, logs.String())
		case <-deadline:
			t.Fatalf("no %q in the log within 30 s:\n%s", substr, logs.String())
		case <-tick.C:
		}
	}
}
