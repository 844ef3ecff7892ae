package scale

import (
	"fmt"
	"time"
)

// The scaler's figures. They are constants rather than keys: they only
// shape how fast a range follows the load, and each is chosen so that a
// step shows its effect before the next one.
const (
	// workerSampleEvery is how often the worker controller samples the
	// accept queue, the workers' CPU and their memory.
	workerSampleEvery = 250 * time.Millisecond
	// scaleUpSamples consecutive saturated samples (accept queue above 0,
	// or busy ratio at least scaleBusyHigh) add a worker.
	scaleUpSamples = 2
	// scaleUpCooldown separates two steps up: a new worker needs a moment
	// to boot before the queue shows its effect.
	scaleUpCooldown = time.Second
	// scaleDownIdle is how long the app must be idle (an empty queue and a
	// busy ratio below scaleBusyLow) before the first step down.
	scaleDownIdle = 10 * time.Second
	// scaleDownCooldown separates two steps down while idleness lasts, and
	// follows a step up before any step down.
	scaleDownCooldown = 2 * time.Second
	// scaleBusyHigh and scaleBusyLow are the busy ratio (the workers' CPU
	// time over wall time, averaged over the workers) above which the app
	// counts as saturated and below which it may count as idle.
	scaleBusyHigh = 0.9
	scaleBusyLow  = 0.5
)

// scalePhase is where a scaler stands between steps.
type scalePhase int

const (
	// scaleSteady: a step may follow the next sample that calls for one.
	scaleSteady scalePhase = iota
	// scaleCooling: a step was taken; none follows before coolUntil.
	scaleCooling
)

func (p scalePhase) String() string {
	if p == scaleCooling {
		return "cooling"
	}
	return "steady"
}

// scaleSample is one observation of an app's saturation.
type scaleSample struct {
	at time.Time
	// queue is the accept queue depth summed over the app's listeners.
	queue int
	// busy is the busy ratio in 0..1, or negative when it could not be
	// measured (first sample, workers replaced since the last one).
	busy float64
}

// scaler decides the worker target of an app with a workers range from
// its samples. It is pure: the worker controller's goroutine owns it,
// feeds it samples and carries out its steps.
type scaler struct {
	min, max  int
	target    int
	phase     scalePhase
	coolUntil time.Time
	// hot counts consecutive saturated samples.
	hot int
	// idleSince is when the current idle stretch began (zero: not idle).
	idleSince time.Time
}

// newScaler returns a scaler for min..max starting at start, clamped into
// the range (start 0: min).
func newScaler(lo, hi, start int) *scaler {
	return &scaler{min: lo, max: hi, target: max(lo, min(start, hi))}
}

// observe takes one sample and returns the step it calls for (+1, -1 or
// 0) and, for a step, the reason to log. The target moves by the step.
func (s *scaler) observe(x scaleSample) (step int, reason string) {
	saturated := x.queue > 0 || x.busy >= scaleBusyHigh
	idle := x.queue == 0 && x.busy < scaleBusyLow
	if saturated {
		s.hot++
	} else {
		s.hot = 0
	}
	switch {
	case !idle:
		s.idleSince = time.Time{}
	case s.idleSince.IsZero():
		s.idleSince = x.at
	}
	if s.phase == scaleCooling {
		if x.at.Before(s.coolUntil) {
			return 0, ""
		}
		s.phase = scaleSteady
	}
	switch {
	case s.hot >= scaleUpSamples && s.target < s.max:
		s.hot = 0
		s.cool(x.at, scaleUpCooldown)
		s.target++
		return +1, fmt.Sprintf("saturated for %d samples: accept queue %d, busy ratio %s", scaleUpSamples, x.queue, busyText(x.busy))
	case idle && x.at.Sub(s.idleSince) >= scaleDownIdle && s.target > s.min:
		s.cool(x.at, scaleDownCooldown)
		s.target--
		return -1, fmt.Sprintf("idle for %s: accept queue 0, busy ratio %s", x.at.Sub(s.idleSince).Round(100*time.Millisecond), busyText(x.busy))
	}
	return 0, ""
}

// cool enters scaleCooling for d from now.
func (s *scaler) cool(now time.Time, d time.Duration) {
	s.phase, s.coolUntil = scaleCooling, now.Add(d)
}

func busyText(b float64) string {
	if b < 0 {
		return "unknown"
	}
	return fmt.Sprintf("%.2f", b)
}
