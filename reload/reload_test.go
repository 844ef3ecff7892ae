package reload

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/reload/strategy"
)

// fakeGen and fakeHost exercise the strategies' ordering only: which step
// runs after which, and what a failure undoes. Real generations are tested
// end to end in test/e2e/reload.
type fakeGen struct {
	name string
}

func newGen(name string) *fakeGen     { return &fakeGen{name: name} }
func (g *fakeGen) String() string     { return g.name }
func (g *fakeGen) ExitReason() string { return "exit 0" }
func (g *fakeGen) Tail() []string     { return []string{"tail of " + g.name} }

type fakeHost struct {
	steps     []string
	spawnErr  error
	readyErr  map[string]error
	usr2Err   error
	commitErr error
	n         int
}

func (h *fakeHost) Spawn(_ context.Context, dir string) (Gen, error) {
	h.steps = append(h.steps, "spawn "+dir)
	if h.spawnErr != nil {
		return nil, h.spawnErr
	}
	h.n++
	return newGen("new" + strings.Repeat("'", h.n-1)), nil
}

func (h *fakeHost) USR2(_ context.Context, old Gen) (Gen, error) {
	h.steps = append(h.steps, "usr2 "+old.String())
	if h.usr2Err != nil {
		return newGen("usr2child"), h.usr2Err
	}
	return newGen("usr2child"), nil
}

func (h *fakeHost) Ready(_ context.Context, g Gen) error {
	h.steps = append(h.steps, "ready "+g.String())
	return h.readyErr[g.String()]
}

func (h *fakeHost) Commit(_ context.Context, g Gen) error {
	h.steps = append(h.steps, "commit "+g.String())
	return h.commitErr
}

func (h *fakeHost) Drain(_ context.Context, g Gen) error {
	h.steps = append(h.steps, "drain "+g.String())
	return nil
}

func (h *fakeHost) Abort(g Gen) error {
	h.steps = append(h.steps, "abort "+g.String())
	return nil
}

func (h *fakeHost) Dir(g Gen) string { return "/rel/" + g.String() }

func TestStrategies(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		run        func(context.Context, Host, Gen, Progress) (Gen, error)
		host       *fakeHost
		wantSteps  []string
		wantErr    bool
		rolledBack bool
	}{
		{"swap ok", Swap, &fakeHost{}, []string{"spawn ", "ready new", "commit new", "drain old"}, false, false},
		{"swap spawn fails", Swap, &fakeHost{spawnErr: boom}, []string{"spawn "}, true, false},
		{"swap not ready", Swap, &fakeHost{readyErr: map[string]error{"new": boom}}, []string{"spawn ", "ready new", "abort new"}, true, true},
		{"swap commit refused", Swap, &fakeHost{commitErr: boom}, []string{"spawn ", "ready new", "commit new", "abort new"}, true, true},
		{"usr2 ok", USR2, &fakeHost{}, []string{"usr2 old", "commit usr2child", "drain old", "ready usr2child"}, false, false},
		{"usr2 new master fails to boot", USR2, &fakeHost{usr2Err: boom}, []string{"usr2 old", "abort usr2child"}, true, true},
		{"usr2 unhealthy after drain", USR2, &fakeHost{readyErr: map[string]error{"usr2child": boom}},
			[]string{"usr2 old", "commit usr2child", "drain old", "ready usr2child", "spawn /rel/old", "ready new", "commit new", "abort usr2child"}, true, true},
		{"usr2 unhealthy and previous release fails too", USR2, &fakeHost{readyErr: map[string]error{"usr2child": boom, "new": boom}},
			[]string{"usr2 old", "commit usr2child", "drain old", "ready usr2child", "spawn /rel/old", "ready new", "abort new"}, true, false},
		{"restart ok", Restart, &fakeHost{}, []string{"drain old", "spawn ", "ready new", "commit new"}, false, false},
		{"restart not ready", Restart, &fakeHost{readyErr: map[string]error{"new": boom}},
			[]string{"drain old", "spawn ", "ready new", "abort new", "spawn /rel/old", "ready new'", "commit new'"}, true, true},
		{"restart spawn fails", Restart, &fakeHost{spawnErr: boom}, []string{"drain old", "spawn ", "spawn /rel/old"}, true, false},
		{"restart commit refused", Restart, &fakeHost{commitErr: boom},
			[]string{"drain old", "spawn ", "ready new", "commit new", "abort new", "spawn /rel/old", "ready new'", "commit new'", "abort new'"}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			var phases []string
			progress := func(s string) { phases = append(phases, s) }
			_, err = tt.run(context.Background(), tt.host, newGen("old"), progress)
			if !reflect.DeepEqual(tt.host.steps, tt.wantSteps) {
				t.Errorf("steps:\n got %q\nwant %q", tt.host.steps, tt.wantSteps)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			var f *Failure
			if err != nil {
				if !errors.As(err, &f) {
					t.Fatalf("error %T is not a *Failure", err)
				}
				if f.RolledBack != tt.rolledBack {
					t.Errorf("RolledBack = %v, want %v", f.RolledBack, tt.rolledBack)
				}
				if !errors.Is(err, boom) {
					t.Errorf("error %v does not wrap the cause", err)
				}
			}
			if len(phases) == 0 {
				t.Error("no progress reported")
			}
		})
	}
}

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		name      string
		requested strategy.Strategy
		f         Facts
		want      strategy.Strategy
		why       bool
	}{
		{"swap stays swap", strategy.Swap, Facts{Link: "/srv/current", LinkTarget: "/srv/b", RunsIn: "/srv/a"}, strategy.Swap, false},
		{"usr2 without a link", strategy.USR2, Facts{RunsIn: "/srv/a"}, strategy.USR2, false},
		{"usr2 following the link", strategy.USR2, Facts{Link: "/srv/current", LinkTarget: "/srv/b", RunsIn: "/srv/a", FollowsLink: true}, strategy.USR2, false},
		{"usr2 already in the target", strategy.USR2, Facts{Link: "/srv/current", LinkTarget: "/srv/a", RunsIn: "/srv/a"}, strategy.USR2, false},
		{"usr2 pinned elsewhere", strategy.USR2, Facts{Link: "/srv/current", LinkTarget: "/srv/b", RunsIn: "/srv/a"}, strategy.Swap, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, why := Choose(tc.requested, tc.f)
			if got != tc.want || (why != "") != tc.why {
				t.Errorf("Choose = %s, %q; want %s (reason given: %v)", got, why, tc.want, tc.why)
			}
		})
	}
}

// TestUngated: only an in-place re-exec of an app with steered listeners
// warns that its gate does not keep traffic from the new generation.
func TestUngated(t *testing.T) {
	for _, tc := range []struct {
		s       strategy.Strategy
		steered bool
		want    bool
	}{
		{strategy.USR2, true, true},
		{strategy.USR2, false, false},
		{strategy.Swap, true, false},
	} {
		if got := (Facts{Steered: tc.steered}).Ungated(tc.s); (got != "") != tc.want || (tc.want && !strings.Contains(got, "use swap")) {
			t.Errorf("Ungated(%s, steered %v) = %q, want a line %v", tc.s, tc.steered, got, tc.want)
		}
	}
}

// TestEveryStrategyHasSteps: Run knows the steps of every strategy of the
// registry, and refuses a name it has none for without starting anything.
func TestEveryStrategyHasSteps(t *testing.T) {
	for _, in := range strategy.All() {
		if _, ok := steps[in.Name]; !ok {
			t.Errorf("strategy %q is registered but reload has no steps for it (add them in reload/%s.go and to steps)", in.Name, in.Name)
		}
	}
	if len(steps) != len(strategy.All()) {
		t.Errorf("reload has steps for %d strategies, the registry lists %d", len(steps), len(strategy.All()))
	}
	_, err := Run(context.Background(), "bogus", nil, nil, func(string) {})
	var f *Failure
	if !errors.As(err, &f) || f.RolledBack {
		t.Errorf("Run(bogus) = %v; want a Failure without a rollback", err)
	}
}
