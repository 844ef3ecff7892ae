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
