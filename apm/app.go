package apm

import (
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
)

// apdexWindow is the span of supervisor_app_apdex.
const apdexWindow = 60

// counterKey names one supervisor_route_requests_total series of an app.
type counterKey struct {
	route, method string
	code          int
}

// apdexSecond is one second of an app's Apdex window.
type apdexSecond struct {
	at                          int64
	total, satisfied, tolerated uint32
}

// App is one app's route metrics: its route table, Apdex window, serving
// generations and comparison. Its methods are safe for concurrent use.
type App struct {
	set  *Set
	name string

	mu       sync.Mutex
	settings config.RouteMetrics
	router   *router
	apdex    [apdexWindow]apdexSecond
	gens     map[int]*Gen
	masters  map[int]*Gen
	counters map[counterKey]prometheus.Counter
	hists    map[string]prometheus.Observer
	queue    prometheus.Observer
	dropped  prometheus.Counter
	cmp      *comparison
	timer    *time.Timer
	recorded uint64
}

func newApp(s *Set, name string) *App {
	return &App{
		set: s, name: name,
		gens:     make(map[int]*Gen),
		masters:  make(map[int]*Gen),
		counters: make(map[counterKey]prometheus.Counter),
		hists:    make(map[string]prometheus.Observer),
		queue:    s.queue.WithLabelValues(name),
		dropped:  s.dropped.WithLabelValues(name),
	}
}

// configure takes the app's settings; a change of routes or cap makes a
// new route table (the old one's routes go back to the total budget).
func (a *App) configure(r config.RouteMetrics) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.router != nil && slices.Equal(r.Routes, a.settings.Routes) && r.Cap == a.settings.Cap {
		a.settings = r
		return
	}
	if a.router != nil {
		a.router.release()
	}
	a.settings = r
	a.router = newRouter(r.Routes, r.Cap, a.set.budget)
}

// forget gives the app's routes back and stops its pending comparison.
func (a *App) forget() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.timer != nil {
		a.timer.Stop()
	}
	if a.router != nil {
		a.router.release()
	}
}

// Gen registers generation id of the app, its master's pid master,
// started in the release dir (Release reads its name), and returns it;
// usage (nil: unknown) reads its workers' CPU and memory for comparisons.
// A line read off any pipe of the app whose master is master counts for
// it. End ends it.
func (a *App) Gen(id, master int, dir string, usage func() (Usage, bool)) *Gen {
	g := &Gen{app: a, ID: id, Master: master, Release: Release(dir), Started: a.set.now(), usage: usage}
	a.mu.Lock()
	defer a.mu.Unlock()
	g.ring = make([]genSecond, ringLen(a.settings.CompareWindow))
	a.gens[id] = g
	if master > 0 {
		a.masters[master] = g
	}
	return g
}

// End marks generation id's master gone: it leaves
// supervisor_generation_info; a pending comparison keeps its figures.
func (a *App) End(id int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g := a.gens[id]
	if g == nil {
		return
	}
	delete(a.gens, id)
	if a.masters[g.Master] == g {
		delete(a.masters, g.Master)
	}
}

// record counts one request read off generation g's pipe: for the
// generation whose master wrote it, g when that one is unknown.
func (a *App) record(g *Gen, l gunicorn.AccessLine, now time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if l.Master != g.Master {
		if mg := a.masters[l.Master]; mg != nil {
			g = mg
		}
	}
	a.recorded++
	route := a.router.route(l.Path)
	key := counterKey{route: route, method: method(l.Method), code: l.Status}
	c := a.counters[key]
	if c == nil {
		c = a.set.requests.WithLabelValues(a.name, route, key.method, strconv.Itoa(l.Status))
		a.counters[key] = c
	}
	c.Inc()
	h := a.hists[route]
	if h == nil {
		h = a.set.duration.WithLabelValues(a.name, route)
		a.hists[route] = h
	}
	h.Observe(l.Duration.Seconds())
	if l.Queue >= 0 {
		a.queue.Observe(l.Queue.Seconds())
	}
	if l.Dropped > 0 {
		a.dropped.Add(float64(l.Dropped))
	}
	sat, tol := a.grade(l)
	sec := now.Unix()
	s := &a.apdex[sec%apdexWindow]
	if s.at != sec {
		*s = apdexSecond{at: sec}
	}
	s.total++
	s.satisfied += sat
	s.tolerated += tol
	g.add(sec, route, l, sat, tol)
}

// Requests returns how many requests the app's access lines counted.
func (a *App) Requests() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.recorded
}

// grade returns 1, 0 for a satisfied request and 0, 1 for a tolerating
// one (0, 0: frustrated, which a 5xx always is).
func (a *App) grade(l gunicorn.AccessLine) (sat, tol uint32) {
	t := a.settings.ApdexT
	switch {
	case l.Status >= 500:
		return 0, 0
	case l.Duration <= t:
		return 1, 0
	case l.Duration <= 4*t:
		return 0, 1
	}
	return 0, 0
}

// lost counts n lines lost on the supervisor's side (not understood).
func (a *App) lost(n int) { a.dropped.Add(float64(n)) }

// scrape returns the Apdex score of the last apdexWindow seconds (ok false
// without requests) and the generations whose masters run.
func (a *App) scrape(now time.Time) (float64, bool, []GenInfo) {
	a.mu.Lock()
	defer a.mu.Unlock()
	var total, sat, tol uint64
	from := now.Unix() - apdexWindow
	for _, s := range a.apdex {
		if s.at > from {
			total += uint64(s.total)
			sat += uint64(s.satisfied)
			tol += uint64(s.tolerated)
		}
	}
	gens := make([]GenInfo, 0, len(a.gens))
	for _, g := range a.gens {
		gens = append(gens, GenInfo{ID: g.ID, Release: g.Release})
	}
	slices.SortFunc(gens, func(x, y GenInfo) int { return x.ID - y.ID })
	if total == 0 {
		return 0, false, gens
	}
	return (float64(sat) + float64(tol)/2) / float64(total), true, gens
}

// GenInfo names a generation and its release.
type GenInfo struct {
	ID      int
	Release string
}

// method bounds the method label: the methods of RFC 9110 and PATCH as they
// are, anything else "other".
func method(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH":
		return m
	}
	return "other"
}
