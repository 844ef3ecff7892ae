package supctl

import (
	"math"
	"testing"
)

// TestAPMColumns: the 5xx percentage comes from the route series when the
// app has them, else from statsd; without answers in the interval it is
// unknown; Apdex is the current gauge, unknown without one.
func TestAPMColumns(t *testing.T) {
	for _, c := range []struct {
		name          string
		prev, cur     apmCounters
		apdex, errPct float64
	}{
		{"statsd only", apmCounters{statsd: 100, statsd5xx: 1}, apmCounters{statsd: 300, statsd5xx: 11, apdex: 0.9, hasApdex: true}, 0.9, 5},
		{"routes win", apmCounters{statsd: 100, routes: 100}, apmCounters{statsd: 200, statsd5xx: 50, routes: 200, routes5xx: 10}, math.NaN(), 10},
		{"no answers", apmCounters{statsd: 100}, apmCounters{statsd: 100}, math.NaN(), math.NaN()},
	} {
		apdex, errPct := apmColumns(&c.prev, &c.cur)
		if !same(apdex, c.apdex) || !same(errPct, c.errPct) {
			t.Errorf("%s: apdex %v err%% %v, want %v %v", c.name, apdex, errPct, c.apdex, c.errPct)
		}
	}
}

func same(a, b float64) bool { return a == b || math.IsNaN(a) && math.IsNaN(b) }
