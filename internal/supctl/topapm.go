package supctl

import (
	"math"
	"strings"
)

// apmCounters are an app's Apdex and error counts in a metrics reading.
type apmCounters struct {
	apdex    float64
	hasApdex bool
	// statsd: every answer and the 5xx ones, from Gunicorn's statsd
	// (supervisor_http_requests_total{status}).
	statsd, statsd5xx float64
	// routes: the same from the access log (supervisor_route_requests_total{code}).
	routes, routes5xx float64
}

// add records s when it is one of the series the Apdex and error-rate
// columns read (name without the "supervisor_" prefix).
func (a *apmCounters) add(name string, s *sample) {
	switch name {
	case "app_apdex":
		a.apdex, a.hasApdex = s.value, true
	case "http_requests_total":
		a.statsd += s.value
		if strings.HasPrefix(s.labels["status"], "5") {
			a.statsd5xx += s.value
		}
	case "route_requests_total":
		a.routes += s.value
		if strings.HasPrefix(s.labels["code"], "5") {
			a.routes5xx += s.value
		}
	}
}

// apmColumns returns the Apdex of cur (NaN without one) and the percentage
// of 5xx answers between prev and cur: from the route series where the app
// has them, else from statsd; NaN without answers in between.
func apmColumns(prev, cur *apmCounters) (apdex, errPct float64) {
	apdex = math.NaN()
	if cur.hasApdex {
		apdex = cur.apdex
	}
	total, bad := cur.statsd-prev.statsd, cur.statsd5xx-prev.statsd5xx
	if cur.routes > 0 {
		total, bad = cur.routes-prev.routes, cur.routes5xx-prev.routes5xx
	}
	if total <= 0 {
		return apdex, math.NaN()
	}
	return apdex, 100 * max(bad, 0) / total
}
