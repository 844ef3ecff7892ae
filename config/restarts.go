package config

import "time"

// Restarts decides what follows an exit of an app the supervisor did not
// ask for, from the exits it recorded (the zero value: none). It is pure:
// the caller passes the clock, so every rule is a table test.
//
// Rules: restart = never leaves the app stopped after any exit; on-failure
// leaves it stopped after a clean exit (code 0, no signal). Otherwise the
// delay starts at Backoff.Initial and doubles after each exit up to
// Backoff.Max; a generation that ran at least Backoff.StableAfter resets it
// to Initial. More than Backoff.CrashLimit exits within Backoff.CrashWindow
// mark the app failed; a failed app is still retried at the same delays.
type Restarts struct {
	// Delay is the last delay given, 0 after Reset; only Exited and Reset
	// change it.
	Delay   time.Duration
	crashes []time.Time // exits within the crash window, oldest first
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

// Reset forgets past exits (an explicit start or restart).
func (p *Restarts) Reset() {
	p.Delay = 0
	p.crashes = nil
}

// Exited records an exit at now of a generation of app that ran for
// ranFor and returns the decision under app's restart and backoff keys.
// clean is true for exit code 0 without a signal.
func (p *Restarts) Exited(app *App, clean bool, ranFor time.Duration, now time.Time) RestartDecision {
	switch {
	case app.Restart == RestartNever:
		return RestartDecision{Reason: "restart = never"}
	case app.Restart == RestartOnFailure && clean:
		return RestartDecision{Reason: "exited cleanly; restart = on-failure"}
	}
	b := app.Backoff
	if ranFor >= b.StableAfter {
		p.Delay = 0
	}
	if p.Delay == 0 {
		p.Delay = b.Initial
	} else {
		p.Delay = min(2*p.Delay, b.Max)
	}
	keep := p.crashes[:0]
	for _, c := range p.crashes {
		if now.Sub(c) <= b.CrashWindow {
			keep = append(keep, c)
		}
	}
	p.crashes = append(keep, now)
	return RestartDecision{Restart: true, Delay: p.Delay, Failed: len(p.crashes) > b.CrashLimit, Crashes: len(p.crashes)}
}
