package supctl

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gunisup/supervisor/control"
)

// routeFamilies is the prefix of the per-route series `top --routes` reads.
const routeFamilies = "supervisor_route_"

// topRoutesShown bounds each table of `top --routes`.
const topRoutesShown = 10

// routeCounters are one route's values in a reading.
type routeCounters struct {
	requests, errors float64 // errors: 5xx answers
	latency          []bucket
}

// routeReading is one reading of an app's route series.
type routeReading struct {
	at     time.Time
	routes map[string]*routeCounters
}

// readRoutes reads app's route series only (the control API filters the
// scrape by family prefix and app).
func readRoutes(ctx context.Context, c *control.Client, app string) (routeReading, error) {
	text, err := c.MetricsOf(ctx, []string{app}, []string{routeFamilies})
	if err != nil {
		return routeReading{}, err
	}
	return parseRoutes(text, app, time.Now()), nil
}

// parseRoutes collects app's route series of text, read at at.
func parseRoutes(text []byte, app string, at time.Time) routeReading {
	r := routeReading{at: at, routes: map[string]*routeCounters{}}
	eachSample(text, func(s *sample) {
		route, ok := s.labels["route"]
		if s.labels["app"] != app || !ok {
			return // another app's, or a per-app series (queue time)
		}
		rc := r.routes[route]
		if rc == nil {
			rc = &routeCounters{}
			r.routes[route] = rc
		}
		switch s.name {
		case "supervisor_route_requests_total":
			rc.requests += s.value
			if strings.HasPrefix(s.labels["code"], "5") {
				rc.errors += s.value
			}
		case "supervisor_route_request_duration_seconds_bucket":
			if le, err := strconv.ParseFloat(s.labels["le"], 64); err == nil {
				rc.latency = append(rc.latency, bucket{le: le, count: s.value})
			}
		}
	})
	for _, rc := range r.routes {
		slices.SortFunc(rc.latency, func(x, y bucket) int { return cmp.Compare(x.le, y.le) })
	}
	return r
}

// routeRow is one route's line; NaN is a value not known.
type routeRow struct {
	route              string
	rate, errRate, p99 float64
	errors             float64
}

// routeRows computes each route's request and 5xx rates, 5xx count and p99
// between two readings, sorted by route.
func routeRows(prev, cur routeReading) []routeRow {
	dt := cur.at.Sub(prev.at).Seconds()
	var rows []routeRow
	for _, route := range slices.Sorted(mapKeys(cur.routes)) {
		c, p := cur.routes[route], prev.routes[route]
		if p == nil {
			p = &routeCounters{}
		}
		r := routeRow{route: route, rate: math.NaN(), errRate: math.NaN(), p99: math.NaN()}
		r.errors = max(c.errors-p.errors, 0)
		if dt > 0 {
			r.rate = max(c.requests-p.requests, 0) / dt
			r.errRate = r.errors / dt
		}
		r.p99 = quantile(0.99, bucketDelta(p.latency, c.latency))
		rows = append(rows, r)
	}
	return rows
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// renderRoutes appends app's two tables: the slowest routes by p99 and the
// routes with the most 5xx answers, topRoutesShown each (see renderTop for
// tty drawing).
func renderRoutes(dst []byte, app string, rows []routeRow, at time.Time, o topOptions) []byte {
	eol := "\n"
	if o.tty {
		dst = append(dst, ansiHome...)
		eol = ansiEraseLine + "\n"
	}
	dst = fmt.Appendf(dst, "supctl top --routes %s: %d routes at %s, every %s%s", app, len(rows), at.Format("15:04:05"), o.interval, eol)
	if len(rows) == 0 {
		dst = fmt.Appendf(dst, "(no route series for %s: no request read from its access log yet, or not an app of this supervisor)%s", app, eol)
	}
	slow := slices.Clone(rows)
	slices.SortStableFunc(slow, func(a, b routeRow) int { return cmpDesc(a.p99, b.p99) })
	dst = fmt.Appendf(dst, "%-40s %8s %7s %8s%s", "SLOWEST ROUTES (P99)", "REQ/S", "P99", "5XX/S", eol)
	for _, r := range slow[:min(len(slow), topRoutesShown)] {
		dst = fmt.Appendf(dst, "%-40s %8s %7s %8s%s", clip(r.route, 40), fixed(r.rate, 1), millis(r.p99), fixed(r.errRate, 1), eol)
	}
	dst = append(dst, eol...)
	failing := slices.DeleteFunc(slices.Clone(rows), func(r routeRow) bool { return r.errors == 0 })
	slices.SortStableFunc(failing, func(a, b routeRow) int { return cmpDesc(a.errors, b.errors) })
	dst = fmt.Appendf(dst, "%-40s %8s %8s %6s%s", "MOST ERRORS (5XX)", "REQ/S", "5XX/S", "ERR%", eol)
	for _, r := range failing[:min(len(failing), topRoutesShown)] {
		dst = fmt.Appendf(dst, "%-40s %8s %8s %6s%s", clip(r.route, 40), fixed(r.rate, 1), fixed(r.errRate, 1), fixed(100*r.errRate/r.rate, 1), eol)
	}
	if len(failing) == 0 {
		dst = append(dst, "(no 5xx answers in this interval)"...)
		dst = append(dst, eol...)
	}
	if o.tty {
		dst = append(dst, ansiEraseDown...)
	}
	return dst
}

// cmpDesc orders larger values first, NaN last.
func cmpDesc(a, b float64) int {
	switch {
	case math.IsNaN(a) && math.IsNaN(b):
		return 0
	case math.IsNaN(a):
		return 1
	case math.IsNaN(b):
		return -1
	}
	return cmp.Compare(b, a)
}

// runTopRoutes is runTop for `top --routes APP`: it reads only app's route
// series every o.interval and draws its two tables.
func runTopRoutes(ctx context.Context, c *control.Client, out io.Writer, app string, o topOptions) error {
	read := func() (routeReading, error) { return readRoutes(ctx, c, app) }
	draw := func(buf []byte, prev, cur routeReading) []byte {
		return renderRoutes(buf, app, routeRows(prev, cur), cur.at, o)
	}
	return refresh(ctx, out, o, read, draw)
}
