package supervise

import (
	"fmt"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/health"
)

// gatePause is the pause between two checks of a generation being started
// or taking over: checks run back to back, not at the steady-state
// interval, so a good generation passes healthy_after checks in well under
// a second after its workers boot.
const gatePause = 100 * time.Millisecond

// gate counts the checks of one generation being started or taking over
// and decides when they are enough. It is plain data: the prober feeds it
// check results in order.
type gate struct {
	// passes in a row make the generation ready.
	passes int
	// fails in a row of answered failures (health.AnsweredFailure) reject it
	// at once; unanswered checks (timeouts) neither count nor reset them.
	fails int
	// refusedAnswers: a refused connection counts as an answered failure.
	// False for processes, which bind their own ports when they get to it.
	refusedAnswers bool

	ok, bad int
	// last is the most telling failure seen: the last answered one if any.
	last error
}

// newGate returns the gate of app for a generation that must pass passes
// checks in a row.
func newGate(app *config.App, passes int) *gate {
	return &gate{passes: passes, fails: app.Health.UnhealthyAfter, refusedAnswers: app.Kind == config.KindGunicorn}
}

// gateVerdict is what one check result means for the gate.
type gateVerdict int

const (
	// gateWait: keep checking.
	gateWait gateVerdict = iota
	// gatePassed: the generation passed its checks.
	gatePassed
	// gateRejected: it failed fails answered checks in a row; gate.err says how.
	gateRejected
)

// observe records one check result (nil is a pass) and returns the verdict.
func (g *gate) observe(err error) gateVerdict {
	if err == nil {
		g.bad = 0
		if g.ok++; g.ok >= g.passes {
			return gatePassed
		}
		return gateWait
	}
	g.ok = 0
	answered := health.AnsweredFailure(err) && (g.refusedAnswers || !health.Refused(err))
	if !answered {
		if g.last == nil {
			g.last = err
		}
		return gateWait
	}
	g.last = err
	if g.bad++; g.fails > 0 && g.bad >= g.fails {
		return gateRejected
	}
	return gateWait
}

// err names why the gate rejected the generation.
func (g *gate) err() error {
	return fmt.Errorf("failed %d checks in a row: %w", g.bad, g.last)
}
