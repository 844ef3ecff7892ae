package config

import "time"

// Restarts decides what follows an exit of an app the supervisor did not
// ask for. It is pure: the caller passes the clock, so every rule is a
// table test.
//
// Rules: restart = never leaves the app stopped after any exit; on-failure
// leaves it stopped after a clean exit (code 0, no signal). Otherwise the
// delay starts at Backoff.Initial and doubles after each exit up to
// Backoff.Max; a generation that ran at least Backoff.StableAfter resets it
// to Initial. More than Backoff.CrashLimit exits within Backoff.CrashWindow
// mark the app failed; a failed app is still retried at the same delays.
type Restarts struct {
	mode    RestartPolicy
	b       Backoff
	delay   time.Duration // the last delay given; 0 after Reset
	crashes []time.Time   // exits within the crash window, oldest first
}

// RestartDecision is what follows one exit.
type RestartDecision struct {
	// Restart is false when the policy leaves the app stopped; Reason says why.
	Restart bool
	Reason  string
	// Delay is how long to wait before the next start.
	Delay time.Duration
	// Failed is true in a crash loop; Crashes counts the exits in the window.
	Failed  bool
	Crashes int
}

// NewRestarts returns the rule of restart mode with backoff b, before any
// exit.
func NewRestarts(mode RestartPolicy, b Backoff) Restarts {
	return Restarts{mode: mode, b: b}
}

// Reset forgets past exits (an explicit start or restart).
func (p *Restarts) Reset() {
	p.delay = 0
	p.crashes = nil
}

// Delay is the delay given after the last exit (0 after Reset).
func (p *Restarts) Delay() time.Duration { return p.delay }

// Exited records an exit at now of a generation that ran for ranFor and
// returns the decision. clean is true for exit code 0 without a signal.
func (p *Restarts) Exited(clean bool, ranFor time.Duration, now time.Time) RestartDecision {
	switch {
	case p.mode == RestartNever:
		return RestartDecision{Reason: "restart = never"}
	case p.mode == RestartOnFailure && clean:
		return RestartDecision{Reason: "exited cleanly; restart = on-failure"}
	}
	if ranFor >= p.b.StableAfter {
		p.delay = 0
	}
	if p.delay == 0 {
		p.delay = p.b.Initial
	} else {
		p.delay = min(2*p.delay, p.b.Max)
	}
	keep := p.crashes[:0]
	for _, c := range p.crashes {
		if now.Sub(c) <= p.b.CrashWindow {
			keep = append(keep, c)
		}
	}
	p.crashes = append(keep, now)
	return RestartDecision{Restart: true, Delay: p.delay, Failed: len(p.crashes) > p.b.CrashLimit, Crashes: len(p.crashes)}
}
