package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
)

func TestGateVerdicts(t *testing.T) {
	status500 := &AnswerError{Msg: "GET /healthz: status 500"}
	refused := fmt.Errorf("GET /: %w", syscall.ECONNREFUSED)
	reset := fmt.Errorf("GET /: %w", syscall.ECONNRESET)
	timeout := fmt.Errorf("GET /: %w", context.DeadlineExceeded)
	tests := []struct {
		name string
		kind config.Kind
		seq  []error
		want []Verdict
	}{
		{"passes in a row", config.KindGunicorn, []error{nil, nil, nil}, []Verdict{Wait, Wait, Passed}},
		{"a failure restarts the passes", config.KindGunicorn, []error{nil, nil, status500, nil, nil, nil},
			[]Verdict{Wait, Wait, Wait, Wait, Wait, Passed}},
		{"answered failures reject", config.KindGunicorn, []error{status500, reset, refused},
			[]Verdict{Wait, Wait, Rejected}},
		{"a pass resets the failures", config.KindGunicorn, []error{status500, status500, nil, status500, status500},
			[]Verdict{Wait, Wait, Wait, Wait, Wait}},
		{"timeouts neither count nor reset", config.KindGunicorn, []error{status500, timeout, status500, timeout, timeout, status500},
			[]Verdict{Wait, Wait, Wait, Wait, Wait, Rejected}},
		{"a process may not listen yet", config.KindProcess, []error{refused, refused, refused, refused},
			[]Verdict{Wait, Wait, Wait, Wait}},
		{"a process answering 500 is rejected", config.KindProcess, []error{status500, status500, status500},
			[]Verdict{Wait, Wait, Rejected}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			app := testApp()
			app.Kind = tc.kind
			app.Health.UnhealthyAfter = 3
			g := NewGate(app, 3)
			for i, err := range tc.seq {
				if got := g.Observe(err); got != tc.want[i] {
					t.Fatalf("check %d (%v): verdict %d, want %d", i, err, got, tc.want[i])
				}
			}
		})
	}
	g := NewGate(testApp(), 1)
	g.fails = 1
	g.Observe(status500)
	if err := g.Err(); !strings.Contains(err.Error(), "status 500") {
		t.Errorf("rejection %q does not name the last answer", err)
	}
}

// fakeTarget is a generation whose exit the test decides.
type fakeTarget struct {
	done chan struct{}
	exit string
}

func newTarget() *fakeTarget { return &fakeTarget{done: make(chan struct{})} }

func (g *fakeTarget) crash(code int) {
	g.exit = fmt.Sprintf("exit %d", code)
	close(g.done)
}

func (g *fakeTarget) Done() <-chan struct{} { return g.done }
func (g *fakeTarget) ExitReason() string    { <-g.done; return g.exit }
func (g *fakeTarget) Exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// nopObserver ignores checks.
type nopObserver struct{}

func (nopObserver) HealthChecked(string, bool, time.Duration) {}

// testApp is a process app checked by health settings of the kind config gives.
func testApp() *config.App {
	return &config.App{
		Name:         "web",
		Kind:         config.KindProcess,
		StartTimeout: 2 * time.Second,
		Health:       config.Health{Interval: time.Hour, HealthyAfter: 1, UnhealthyAfter: 2},
	}
}

// gatedApp is a Gunicorn app with an HTTP check that a reload gates on.
func gatedApp() *config.App {
	app := testApp()
	app.Kind = config.KindGunicorn
	app.Health = config.Health{Enabled: true, Path: "/healthz", Interval: time.Hour, Timeout: 300 * time.Millisecond, HealthyAfter: 3, UnhealthyAfter: 3}
	return app
}

// readyAgainst runs the prober's Ready on a generation probed at addr,
// within budget, and returns how long it took and its verdict.
func readyAgainst(t *testing.T, app *config.App, addr string, budget time.Duration) (time.Duration, error) {
	t.Helper()
	p := &Prober{Cfg: app, Checker: New(app.Health, nil), Observer: nopObserver{}}
	ctx, cancel := context.WithTimeout(context.Background(), budget)
	defer cancel()
	start := time.Now()
	err := p.Ready(ctx, newTarget(), addr, app.Health.HealthyAfter)
	return time.Since(start), err
}

func serve(t *testing.T, status int) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(status)
		_, _ = io.WriteString(w, http.StatusText(status)) // the client discards the body
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestReadyFailsFast: a generation answering 500 is rejected after
// unhealthy_after checks at the gate's pace, not at the deadline.
func TestReadyFailsFast(t *testing.T) {
	took, err := readyAgainst(t, gatedApp(), serve(t, http.StatusInternalServerError), time.Minute)
	if err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Fatalf("ready: %v, want a rejection naming status 500", err)
	}
	t.Logf("rejected after %s: %v", took, err)
	if took > 10*time.Second {
		t.Errorf("rejection took %s, want about 3 checks 100 ms apart", took)
	}
}

// TestReadyBackToBack: healthy_after passes run GatePause apart, not at the
// steady-state interval (an hour here).
func TestReadyBackToBack(t *testing.T) {
	took, err := readyAgainst(t, gatedApp(), serve(t, http.StatusOK), time.Minute)
	if err != nil {
		t.Fatalf("ready: %v", err)
	}
	t.Logf("3 passes in %s", took)
	if took > 10*time.Second {
		t.Errorf("ready took %s, want about 3 checks 100 ms apart", took)
	}
}

// TestReadySilentUntilDeadline: a generation that never answers is not
// rejected by the gate; the deadline (start_timeout in a reload) ends it.
func TestReadySilentUntilDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0") // never accepts: connections wait in its queue
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() }) // the test's only listener; nothing to report
	took, err := readyAgainst(t, gatedApp(), ln.Addr().String(), 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "not ready in time") {
		t.Fatalf("ready: %v, want the deadline", err)
	}
	if took < 1400*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline", took)
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("a silent generation reported as refused: %v", err)
	}
}

// TestRejectedPrefersExit: refused probes followed by the generation's exit
// (a Gunicorn master halting closes its listeners first) report the exit.
func TestRejectedPrefersExit(t *testing.T) {
	refused := fmt.Errorf("GET /: %w", syscall.ECONNREFUSED)
	g := newTarget()
	gt := NewGate(gatedApp(), 3)
	for range 3 {
		gt.Observe(refused)
	}
	g.crash(3)
	if err := rejected(g, gt); err == nil || !strings.Contains(err.Error(), "exited: exit 3") {
		t.Errorf("rejected = %v, want the exit", err)
	}
	gt = NewGate(gatedApp(), 3)
	for range 3 {
		gt.Observe(&AnswerError{Msg: "GET /healthz: status 500"})
	}
	if err := rejected(g, gt); err == nil || !strings.Contains(err.Error(), "status 500") {
		t.Errorf("rejected = %v, want the answered failures", err)
	}
}
