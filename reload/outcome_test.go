package reload

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestOutcomeOf(t *testing.T) {
	rolled := &Failure{Cause: "new generation exited: exit 3", RolledBack: true}
	for _, tc := range []struct {
		name   string
		err    error
		want   Outcome
		reason string
	}{
		{"nil", nil, OutcomeOK, ""},
		{"rolled back", fmt.Errorf("reload web: %w", rolled), OutcomeRolledBack, "new generation exited: exit 3"},
		{"failure kept the old generation", &Failure{Cause: "spawn: no such file"}, OutcomeFailed, "spawn: no such file"},
		{"other", errors.New("busy"), OutcomeFailed, "busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, reason := OutcomeOf(tc.err)
			if got != tc.want || reason != tc.reason {
				t.Errorf("OutcomeOf(%v) = %q, %q; want %q, %q", tc.err, got, reason, tc.want, tc.reason)
			}
		})
	}
}

func TestResultOf(t *testing.T) {
	started := time.Now().Add(-time.Second)
	r := ResultOf("swap", started, &Failure{Cause: "new generation exited: exit 3", RolledBack: true})
	if r.Strategy != "swap" || r.Result != OutcomeRolledBack || r.Reason != "new generation exited: exit 3" || !r.Started.Equal(started) || r.Duration < time.Second {
		t.Errorf("ResultOf = %+v", r)
	}
}
