package status

import (
	"reflect"
	"testing"
)

func TestAssess(t *testing.T) {
	snap := func(name string, st State, healthy bool, mod ...func(*AppSnapshot)) AppSnapshot {
		s := AppSnapshot{Name: name, State: st, Healthy: healthy, Required: true, Wanted: st != Stopped, Attempted: true}
		for _, f := range mod {
			f(&s)
		}
		return s
	}
	notAttempted := func(s *AppSnapshot) { s.Attempted = false }
	optional := func(s *AppSnapshot) { s.Required = false }
	tests := []struct {
		name             string
		snaps            []AppSnapshot
		started, serving bool
		bad              map[string]string
		summary          string
	}{
		{"none", nil, true, true, nil, ""},
		{"running healthy", []AppSnapshot{snap("web", Running, true)}, true, true, nil, ""},
		{"starting", []AppSnapshot{snap("web", Starting, false)}, false, false, map[string]string{"web": "starting"}, "not healthy: web (starting)"},
		{"start not attempted", []AppSnapshot{snap("web", Running, true, notAttempted)}, false, true, nil, ""},
		{
			"crash loop beside a healthy app",
			[]AppSnapshot{snap("web", Running, true), snap("crashy", Backoff, false), snap("dead", Failed, false)},
			true, false, map[string]string{"crashy": "backoff", "dead": "failed"}, "not healthy: crashy (backoff), dead (failed)",
		},
		{"running unhealthy", []AppSnapshot{snap("web", Running, false)}, true, false, map[string]string{"web": "unhealthy"}, "not healthy: web (unhealthy)"},
		{
			"stopped on purpose, finished, optional",
			[]AppSnapshot{snap("web", Running, true), snap("stopped", Stopped, false), snap("opt", Failed, false, optional)},
			true, true, nil, "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Assess(tc.snaps)
			if r.Started != tc.started || r.Serving != tc.serving || !reflect.DeepEqual(r.NotHealthy, tc.bad) {
				t.Errorf("Assess = %+v, want started %v serving %v bad %v", r, tc.started, tc.serving, tc.bad)
			}
			if got := r.Summary(); got != tc.summary {
				t.Errorf("Summary = %q, want %q", got, tc.summary)
			}
		})
	}
}
