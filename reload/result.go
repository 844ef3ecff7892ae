package reload

import "time"

// Result records how one reload ended, for status and across a self-upgrade.
type Result struct {
	Strategy string        `json:"strategy"`
	Result   Outcome       `json:"result"`
	Reason   string        `json:"reason,omitempty"`
	Started  time.Time     `json:"started"`
	Duration time.Duration `json:"duration_ns"`
}

// ResultOf describes a reload with strategy s, started at started, that
// ended now with err (see OutcomeOf).
func ResultOf(s string, started time.Time, err error) *Result {
	outcome, reason := OutcomeOf(err)
	return &Result{Strategy: s, Result: outcome, Reason: reason, Started: started, Duration: time.Since(started)}
}
