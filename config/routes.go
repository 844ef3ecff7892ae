package config

import (
	"strings"
	"time"
)

// Defaults and ceilings of an app's route metrics (see gunisup.toml(5)).
const (
	DefaultRouteCap      = 100
	MaxRouteCap          = 1000
	DefaultApdexT        = 500 * time.Millisecond
	DefaultCompareWindow = 60 * time.Second
)

// RouteMetrics is how the supervisor measures a Gunicorn app's requests by
// route, from the access lines its logger class writes (see package apm).
type RouteMetrics struct {
	// Enabled: the app's masters run the supervisor's logger class and
	// the app gets per-route metrics. Default true for a Gunicorn app.
	Enabled bool `key:"route_metrics"`
	// Routes are templates ("/api/items/:id") matched before the automatic
	// collapse of ids; a ":name" segment matches any one segment.
	Routes []string `key:"routes"`
	// Cap bounds the distinct routes of the app; further ones count as
	// "other".
	Cap int `key:"route_cap"`
	// ApdexT is the Apdex threshold T.
	ApdexT time.Duration `key:"apdex_t"`
	// CompareWindow is how long after a reload or deploy the new
	// generation is measured against the old one's last CompareWindow.
	CompareWindow time.Duration `key:"compare_window"`
	// LoggerClass is the user's own --logger-class from args ("" for none):
	// the supervisor's class subclasses it.
	LoggerClass string `key:"args"`
}

// defaultRouteMetrics is the RouteMetrics of an app that sets none of its
// keys.
func defaultRouteMetrics() RouteMetrics {
	return RouteMetrics{Cap: DefaultRouteCap, ApdexT: DefaultApdexT, CompareWindow: DefaultCompareWindow}
}

// routeMetrics reads route_metrics, routes, route_cap, apdex_t and
// compare_window: Gunicorn apps only.
func routeMetrics(t *table, a *App, gunicorn bool) {
	r := defaultRouteMetrics()
	r.Enabled = gunicorn
	var set []string
	mark := func(name string, ok bool) {
		if ok {
			set = append(set, name)
		}
	}
	mark("route_metrics", t.boolean("route_metrics", &r.Enabled))
	if t.strList("routes", &r.Routes) {
		mark("routes", true)
		for i, s := range r.Routes {
			if !strings.HasPrefix(s, "/") || strings.ContainsAny(s, " \t?#") {
				t.p.elemErrf(t.key("routes"), i, "route %q must start with \"/\" and hold no space, '?' or '#'", s)
			}
		}
	}
	mark("route_cap", t.integer("route_cap", &r.Cap, 1, MaxRouteCap))
	mark("apdex_t", t.duration("apdex_t", &r.ApdexT))
	mark("compare_window", t.duration("compare_window", &r.CompareWindow))
	if len(set) > 0 && !gunicorn && a.Kind == KindProcess {
		t.errf(set[0], "only valid for kind \"gunicorn\"")
	}
	r.LoggerClass = loggerClass(a.Args)
	a.Routes = r
}

// loggerClass returns the value of the last --logger-class in args (with
// argparse's abbreviations down to --logg), "" when there is none.
func loggerClass(args []string) string {
	v := ""
	for i, arg := range args {
		if arg == "--" {
			break
		}
		name, ok := strings.CutPrefix(arg, "--")
		if !ok {
			continue
		}
		name, val, eq := strings.Cut(name, "=")
		if len(name) < len("logg") || !strings.HasPrefix("logger-class", name) {
			continue
		}
		switch {
		case eq:
			v = val
		case i+1 < len(args):
			v = args[i+1]
		}
	}
	return v
}
