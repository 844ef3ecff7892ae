package health

import (
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
)

// GatePause is the pause between two checks of a generation being started
// or taking over: checks run back to back, not at the steady-state
// interval, so a good generation passes healthy_after checks in well under
// a second after its workers boot.
const GatePause = 100 * time.Millisecond

// Gate counts the checks of one generation being started or taking over
// and decides when they are enough. It is plain data: the prober feeds it
// check results in order.
type Gate struct {
	// passes in a row make the generation ready.
	passes int
	// fails in a row of answered failures (AnsweredFailure) reject it
	// at once; unanswered checks (timeouts) neither count nor reset them.
	fails int
	// refusedAnswers: a refused connection counts as an answered failure.
	// False for processes, which bind their own ports when they get to it.
	refusedAnswers bool

	ok, bad int
	// last is the most telling failure seen: the last answered one if any.
	last error
}

// NewGate returns the gate of app for a generation that must pass passes
// checks in a row.
func NewGate(app *config.App, passes int) *Gate {
	return &Gate{passes: passes, fails: app.Health.UnhealthyAfter, refusedAnswers: app.Kind == config.KindGunicorn}
}

// Verdict is what one check result means for the gate.
type Verdict int

const (
	// Wait: keep checking.
	Wait Verdict = iota
	// Passed: the generation passed its checks.
	Passed
	// Rejected: it failed fails answered checks in a row; Gate.Err says how.
	Rejected
)

// Observe records one check result (nil is a pass) and returns the verdict.
func (g *Gate) Observe(err error) Verdict {
	if err == nil {
		g.bad = 0
		if g.ok++; g.ok >= g.passes {
			return Passed
		}
		return Wait
	}
	g.ok = 0
	answered := AnsweredFailure(err) && (g.refusedAnswers || !Refused(err))
	if !answered {
		if g.last == nil {
			g.last = err
		}
		return Wait
	}
	g.last = err
	if g.bad++; g.fails > 0 && g.bad >= g.fails {
		return Rejected
	}
	return Wait
}

// Last returns the most telling failure seen (nil before any).
func (g *Gate) Last() error { return g.last }

// Err names why the gate rejected the generation.
func (g *Gate) Err() error {
	return fmt.Errorf("failed %d checks in a row: %w", g.bad, g.last)
}
