package apm

import (
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunisup/supervisor/config"
)

// DefaultTotalRoutes bounds the routes of every app together when
// Options.TotalRoutes is 0: ten apps at the default route_cap.
const DefaultTotalRoutes = 1000

// Options tunes NewSet. The zero value is valid.
type Options struct {
	// TotalRoutes bounds the distinct routes of all apps together (0:
	// DefaultTotalRoutes); further ones count as "other".
	TotalRoutes int
	// Now is the clock (nil: time.Now); tests set it.
	Now func() time.Time
}

// Buckets of supervisor_route_request_duration_seconds: the low end is fine
// since Gunicorn answers most requests in milliseconds.
var durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Buckets of supervisor_route_queue_seconds.
var queueBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}

// Set is the route metrics of every app, and a prometheus.Collector of
// them. All methods are safe for concurrent use.
type Set struct {
	now func() time.Time

	mu     sync.Mutex
	apps   map[string]*App
	budget *budget

	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	queue    *prometheus.HistogramVec
	dropped  *prometheus.CounterVec
	apdex    *prometheus.Desc
	genInfo  *prometheus.Desc
}

// NewSet returns an empty Set.
func NewSet(opts Options) *Set {
	total := opts.TotalRoutes
	if total <= 0 {
		total = DefaultTotalRoutes
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	return &Set{
		now:    now,
		apps:   make(map[string]*App),
		budget: &budget{limit: total},
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supervisor_route_requests_total",
			Help: "Requests answered by the app's workers, by route template, method and status code, from the supervisor's access logger.",
		}, []string{"app", "route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "supervisor_route_request_duration_seconds",
			Help:                            "Time a worker spent on a request, by route template, from the supervisor's access logger.",
			Buckets:                         durationBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"app", "route"}),
		queue: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:                            "supervisor_route_queue_seconds",
			Help:                            "Time between a proxy's X-Request-Start stamp and a worker taking the request (requests with the header only).",
			Buckets:                         queueBuckets,
			NativeHistogramBucketFactor:     1.1,
			NativeHistogramMaxBucketNumber:  160,
			NativeHistogramMinResetDuration: time.Hour,
		}, []string{"app"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "supervisor_access_lines_dropped_total",
			Help: "Access lines lost: refused by a full pipe (counted by the worker) or not understood by the supervisor.",
		}, []string{"app"}),
		apdex: prometheus.NewDesc("supervisor_app_apdex",
			"Apdex score of the app's requests over the last minute: (satisfied + tolerating/2) / all; satisfied within apdex_t, tolerating within 4 apdex_t, frustrated beyond or on a 5xx.",
			[]string{"app"}, nil),
		genInfo: prometheus.NewDesc("supervisor_generation_info",
			"1 for each generation of the app whose master runs; release is the git commit or REVISION of its directory, else the directory's name.",
			[]string{"app", "generation", "release"}, nil),
	}
}

// Configure returns the state of app cfg, made on first use, with its
// routes, caps, Apdex threshold and comparison window taken from cfg.
// A change of routes or route_cap starts the app's route table afresh.
func (s *Set) Configure(cfg *config.App) *App {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.apps[cfg.Name]
	if a == nil {
		a = newApp(s, cfg.Name)
		s.apps[cfg.Name] = a
	}
	a.configure(cfg.Routes)
	return a
}

// App returns the state of app name, nil when it has none or s is nil
// (route metrics off).
func (s *Set) App(name string) *App {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.apps[name]
}

// Forget drops app name's state and its series (the app left the
// configuration).
func (s *Set) Forget(name string) {
	s.mu.Lock()
	a := s.apps[name]
	delete(s.apps, name)
	s.mu.Unlock()
	if a == nil {
		return
	}
	a.forget()
	labels := prometheus.Labels{"app": name}
	s.requests.DeletePartialMatch(labels)
	s.duration.DeletePartialMatch(labels)
	s.queue.DeletePartialMatch(labels)
	s.dropped.DeletePartialMatch(labels)
}

// Prune forgets every app cfg does not configure (see Forget).
func (s *Set) Prune(cfg *config.Config) {
	s.mu.Lock()
	var gone []string
	for name := range s.apps {
		if cfg.App(name) == nil {
			gone = append(gone, name)
		}
	}
	s.mu.Unlock()
	for _, name := range gone {
		s.Forget(name)
	}
}

// Swapped is App.Swapped for app name: the comparison window, 0 when the
// app has no state (or s is nil).
func (s *Set) Swapped(name string, oldID, newID int) time.Duration {
	if a := s.App(name); a != nil {
		return a.Swapped(oldID, newID)
	}
	return 0
}

// Comparison returns app name's latest comparison line (see
// App.Comparison), "" when there is none (or s is nil).
func (s *Set) Comparison(name string) string {
	if a := s.App(name); a != nil {
		return a.Comparison()
	}
	return ""
}

// Describe implements prometheus.Collector.
func (s *Set) Describe(ch chan<- *prometheus.Desc) {
	s.requests.Describe(ch)
	s.duration.Describe(ch)
	s.queue.Describe(ch)
	s.dropped.Describe(ch)
	ch <- s.apdex
	ch <- s.genInfo
}

// Collect implements prometheus.Collector.
func (s *Set) Collect(ch chan<- prometheus.Metric) {
	s.requests.Collect(ch)
	s.duration.Collect(ch)
	s.queue.Collect(ch)
	s.dropped.Collect(ch)
	now := s.now()
	for _, a := range s.appList() {
		score, ok, gens := a.scrape(now)
		if ok {
			ch <- prometheus.MustNewConstMetric(s.apdex, prometheus.GaugeValue, score, a.name)
		}
		for _, g := range gens {
			ch <- prometheus.MustNewConstMetric(s.genInfo, prometheus.GaugeValue, 1, a.name, strconv.Itoa(g.ID), g.Release)
		}
	}
}

// appList returns the set's apps, sorted by name.
func (s *Set) appList() []*App {
	s.mu.Lock()
	apps := make([]*App, 0, len(s.apps))
	for _, a := range s.apps {
		apps = append(apps, a)
	}
	s.mu.Unlock()
	sort.Slice(apps, func(i, j int) bool { return apps[i].name < apps[j].name })
	return apps
}

// Top is the part of the set `supctl top` reads (metrics.TopHandler): the
// per-route request counters, from which it takes an app's error rate, and
// each app's Apdex.
func (s *Set) Top() prometheus.Collector { return topView{s} }

// topView is Set.Top.
type topView struct{ s *Set }

// Describe implements prometheus.Collector.
func (t topView) Describe(ch chan<- *prometheus.Desc) {
	t.s.requests.Describe(ch)
	ch <- t.s.apdex
}

// Collect implements prometheus.Collector.
func (t topView) Collect(ch chan<- prometheus.Metric) {
	t.s.requests.Collect(ch)
	now := t.s.now()
	for _, a := range t.s.appList() {
		if score, ok, _ := a.scrape(now); ok {
			ch <- prometheus.MustNewConstMetric(t.s.apdex, prometheus.GaugeValue, score, a.name)
		}
	}
}
