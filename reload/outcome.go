package reload

import "errors"

// Outcome is how a reload ended: the word status, metrics and the control
// API show for it.
type Outcome string

const (
	// OutcomeOK: the new generation serves alone.
	OutcomeOK Outcome = "ok"
	// OutcomeRolledBack: a new generation was started and undone; the
	// serving generation is intact.
	OutcomeRolledBack Outcome = "rolled_back"
	// OutcomeFailed: the reload did not complete for any other reason.
	OutcomeFailed Outcome = "failed"
)

// Outcomes lists every Outcome, in the order above. Metrics export one series
// per app and outcome from the first scrape, so that an alert on the first
// rolled_back sees the counter go from 0 to 1.
var Outcomes = []Outcome{OutcomeOK, OutcomeRolledBack, OutcomeFailed}

// OutcomeOf returns the outcome a reload's error means and a one-line reason:
// ok and "" for nil; rolled_back and the Failure's Cause for a *Failure
// with RolledBack; failed and the error's text otherwise.
func OutcomeOf(err error) (Outcome, string) {
	if err == nil {
		return OutcomeOK, ""
	}
	var f *Failure
	if errors.As(err, &f) && f.RolledBack {
		return OutcomeRolledBack, f.Cause
	}
	return OutcomeFailed, err.Error()
}
