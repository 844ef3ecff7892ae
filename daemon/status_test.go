package daemon

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/reload/strategy"
	"github.com/gunisup/supervisor/status"
	"github.com/gunisup/supervisor/supervise"
)

// TestAppStatusFromSnapshot: the control API's app status carries every
// field of the Manager's snapshot (same name, same value; FD stays inside),
// so that the wire type and the snapshot cannot drift apart unnoticed.
func TestAppStatusFromSnapshot(t *testing.T) {
	at := time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)
	snap := status.AppSnapshot{
		Name: "web", Kind: "gunicorn", State: status.Running, Healthy: true, HealthChecked: true,
		MasterPID: 4242, WorkerPIDs: []int{4243, 4244}, Processes: 3, Generation: 3, Release: "/srv/web/releases/42",
		Started: at, Restarts: 1, LastExit: &proc.ExitInfo{Code: -1, Signal: 9, Time: at},
		NextRestart: at, Backoff: time.Second,
		Listeners:  []status.ListenerSnapshot{{Address: "tcp://127.0.0.1:8000", Bound: "127.0.0.1:8000", FD: 7, Network: "tcp", Backlog: 2048, Steering: "bpf"}},
		Reloading:  true,
		LastReload: &reload.Result{Strategy: "swap", Result: reload.OutcomeRolledBack, Reason: "exit 3", Started: at, Duration: time.Second},
		Reloads:    map[string]int{"ok": 4, "rolled_back": 1}, StatsdBridge: true, StatsdAddr: "127.0.0.1:40000", Message: "why",
		Required: true, Wanted: true, Attempted: true, Traceback: []string{"Traceback (most recent call last):", "E: x"}, LogDropped: 5,
	}
	want := control.AppStatus{
		Name: "web", Kind: "gunicorn", State: control.StateRunning, Healthy: true, HealthChecked: true,
		MasterPID: 4242, WorkerPIDs: []int{4243, 4244}, Processes: 3, Generation: 3, Release: "/srv/web/releases/42",
		Started: at, Restarts: 1, LastExit: &control.Exit{Code: -1, Signal: 9, Time: at},
		NextRestart: at, Backoff: time.Second,
		Listeners:  []control.Listener{{Address: "tcp://127.0.0.1:8000", Bound: "127.0.0.1:8000", Network: "tcp", Backlog: 2048, Steering: "bpf"}},
		Reloading:  true,
		LastReload: &control.LastReload{Strategy: "swap", Result: "rolled_back", Reason: "exit 3", Started: at, Duration: time.Second},
		Reloads:    map[string]int{"ok": 4, "rolled_back": 1}, StatsdBridge: true, StatsdAddr: "127.0.0.1:40000", Message: "why",
		Required: true, Wanted: true, Attempted: true, Traceback: []string{"Traceback (most recent call last):", "E: x"}, LogDropped: 5,
	}
	if got := appStatuses([]status.AppSnapshot{snap})[0]; !reflect.DeepEqual(got, want) {
		t.Errorf("appStatus:\ngot  %+v\nwant %+v", got, want)
	}
	sameFields(t, reflect.TypeOf(snap), reflect.TypeOf(want), "FD")
	sameFields(t, reflect.TypeOf(snap.Listeners[0]), reflect.TypeOf(want.Listeners[0]), "FD")
	for _, s := range status.States {
		if st := appStatus(status.AppSnapshot{State: s}).State; st.String() != s.String() {
			t.Errorf("state %s maps to %q", s, st)
		}
		known := false
		for _, c := range control.AppStates {
			known = known || c.String() == s.String()
		}
		if !known {
			t.Errorf("state %s is not one of control.AppStates", s)
		}
	}
}

// sameFields fails unless the struct types in and wire have the same field
// names, but for those in internal (which stay inside the supervisor).
func sameFields(t *testing.T, in, wire reflect.Type, internal ...string) {
	t.Helper()
	names := func(ty reflect.Type, skip []string) map[string]bool {
		out := map[string]bool{}
		for i := range ty.NumField() {
			if n := ty.Field(i).Name; !slices.Contains(skip, n) {
				out[n] = true
			}
		}
		return out
	}
	a, b := names(in, internal), names(wire, nil)
	for n := range a {
		if !b[n] {
			t.Errorf("%s.%s has no field in %s", in, n, wire)
		}
	}
	for n := range b {
		if !a[n] {
			t.Errorf("%s.%s has no field in %s", wire, n, in)
		}
	}
}

func TestOutcomeAndCodes(t *testing.T) {
	rolled := &reload.Failure{Cause: "exit 3", Tail: []string{"Traceback"}, RolledBack: true}
	for _, tc := range []struct {
		name   string
		err    error
		result string
		code   control.Code
		tail   int
	}{
		{"ok", nil, "ok", "", 0},
		{"rolled back", fmt.Errorf("reload web: %w", rolled), "rolled_back", "", 1},
		{"busy", fmt.Errorf("%w: a reload is in progress", supervise.ErrBusy), "failed", control.CodeBusy, 0},
		{"not running", fmt.Errorf("web: %w", supervise.ErrNotRunning), "failed", control.CodeNotRunning, 0},
		{"no such app", fmt.Errorf("%w: %q", supervise.ErrNoSuchApp, "x"), "failed", control.CodeNotFound, 0},
		{"other", errors.New("boom"), "failed", "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := outcome(tc.err)
			if out.Result != tc.result || len(out.Tail) != tc.tail || (out.Err == nil) != (tc.err == nil) {
				t.Errorf("outcome(%v) = %+v", tc.err, out)
			}
			var ce *control.Error
			if got := errors.As(out.Err, &ce); got != (tc.code != "") || (got && ce.Code != tc.code) {
				t.Errorf("outcome(%v).Err = %#v, want code %q", tc.err, out.Err, tc.code)
			}
			if tc.err != nil && out.Err.Error() != tc.err.Error() {
				t.Errorf("error text %q, want %q", out.Err, tc.err)
			}
		})
	}
}

func TestStrategyCheck(t *testing.T) {
	b := backend{}
	for _, ok := range []string{"", "swap", "usr2", "restart", "overlap"} {
		if err := b.CheckStrategy(ok); err != nil {
			t.Errorf("CheckStrategy(%q) = %v", ok, err)
		}
	}
	err := b.CheckStrategy("bogus")
	var ce *control.Error
	if !errors.As(err, &ce) || ce.Code != control.CodeBadRequest || err.Error() != `unknown strategy "bogus" (want `+strategy.Quoted()+`)` {
		t.Errorf("CheckStrategy(bogus) = %v", err)
	}
	if out := b.Reload(context.Background(), "web", "bogus", nil); out.Result != "failed" || out.Err == nil {
		t.Errorf("Reload with a bad strategy = %+v", out)
	}
}
