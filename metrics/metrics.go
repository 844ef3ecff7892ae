// Package metrics exports the supervisor's state to Prometheus: per-app
// lifecycle and process-tree metrics computed from snapshots at scrape time,
// accept-queue depth of every held listener, reload and health-check events,
// and Gunicorn's statsd stream bridged into Prometheus series. It also serves
// /metrics, /healthz and /readyz.
//
// Every metric name starts with "supervisor_" and carries the label "app";
// these names are an interface (alerts and dashboards in contrib/ use them).
//
// The endpoint's TLS and basic auth read the web configuration file of
// Prometheus' exporter-toolkit, a subset of it (webConfig), with crypto/tls,
// go.yaml.in/yaml/v2 and golang.org/x/crypto/bcrypt rather than through
// exporter-toolkit itself: exporter-toolkit links prometheus/common/config
// (OAuth2, JWT, proxy and HTML template code) into the binary, 3.2 MB of its
// 14.7 MB loaded size, which costs every supervisor 2.3 MiB of resident
// memory whether or not a web configuration is set; the subset here costs
// 0.6 MB, most of it crypto/tls's server side and YAML.
package metrics

import (
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/gunisup/supervisor/status"
)

const namespace = "supervisor"

// Source yields the current state of every app. The supervisor's Manager
// implements it; each call must return fresh copies that the caller may keep.
type Source interface {
	Snapshots() []status.AppSnapshot
}

// Options tunes New. The zero value is valid.
type Options struct {
	// Logger receives scrape-time errors (at debug level: they are also
	// counted in supervisor_scrape_errors_total) and HTTP handler errors.
	// Nil discards.
	Logger *slog.Logger
	// ProcRoot is the procfs mount point; empty means "/proc".
	ProcRoot string
	// Version is the supervisor's version, the version label of
	// supervisor_build_info; empty means "dev".
	Version string
}

// Buckets for request latency: Gunicorn answers most requests in a few
// milliseconds, so the low end is finer than prometheus.DefBuckets.
var httpDurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Buckets for reloads, which take from about a second (a USR2 swap) to
// minutes (a slow boot that ends in a rollback).
var reloadDurationBuckets = []float64{.1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300}

// Metrics owns an explicit registry holding the supervisor's own Go and
// process metrics, the per-app collector, event-driven metrics fed through
// the status.Observer methods, and the statsd-bridged HTTP metrics.
// All methods are safe for concurrent use.
type Metrics struct {
	reg    *prometheus.Registry
	logger *slog.Logger

	reloadDuration *prometheus.HistogramVec
	healthDuration *prometheus.HistogramVec
	healthUp       *prometheus.GaugeVec

	httpRequests     *prometheus.CounterVec
	httpDuration     *prometheus.HistogramVec
	logMessages      *prometheus.CounterVec
	statsdWorkers    *prometheus.GaugeVec
	statsdMalformed  *prometheus.CounterVec
	scrapeErrors     *prometheus.CounterVec
	featureEnabled   *prometheus.GaugeVec
	apps             *appCollector
	perAppCollectors []*prometheus.MetricVec
}

var _ status.Observer = (*Metrics)(nil)

// New builds the registry and registers every collector on it. The registry
// is never prometheus.DefaultRegisterer, so several Metrics can coexist (tests).
func New(src Source, opts Options) *Metrics {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	procRoot := opts.ProcRoot
	if procRoot == "" {
		procRoot = "/proc"
	}
	m := &Metrics{
		reg:    prometheus.NewRegistry(),
		logger: logger,
		reloadDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "reload_duration_seconds",
			Help:    "Wall time of finished reloads, whatever their result.",
			Buckets: reloadDurationBuckets,
		}, []string{"app"}),
		healthDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "health_check_duration_seconds",
			Help:    "Duration of health checks of the serving generation.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"app"}),
		healthUp: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "health_up",
			Help: "1 if the last health check of the app passed, 0 if it failed.",
		}, []string{"app"}),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "http_requests_total",
			Help: "HTTP responses by status code, from Gunicorn's statsd stream.",
		}, []string{"app", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "http_request_duration_seconds",
			Help:    "HTTP request duration measured by Gunicorn workers, from its statsd stream.",
			Buckets: httpDurationBuckets,
		}, []string{"app"}),
		logMessages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "app_log_messages_total",
			Help: "Gunicorn log messages by level, from its statsd stream.",
		}, []string{"app", "level"}),
		statsdWorkers: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "app_statsd_workers",
			Help: "Worker count last reported by the Gunicorn master over statsd.",
		}, []string{"app"}),
		statsdMalformed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "statsd_malformed_total",
			Help: "Statsd lines received from the app that were not understood and were ignored.",
		}, []string{"app"}),
		scrapeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "scrape_errors_total",
			Help: "Errors while computing per-app metrics at scrape time, by source (procfs, tcp_info, sock_diag).",
		}, []string{"source"}),
		featureEnabled: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "feature_enabled",
			Help: "1 if the feature works on this host, 0 if it is degraded or unused, as `supervisor doctor` probed it at start.",
		}, []string{"feature"}),
	}
	m.apps = &appCollector{src: src, procRoot: procRoot, logger: logger, errors: m.scrapeErrors}
	m.perAppCollectors = []*prometheus.MetricVec{
		m.reloadDuration.MetricVec, m.healthDuration.MetricVec, m.healthUp.MetricVec,
		m.httpRequests.MetricVec, m.httpDuration.MetricVec, m.logMessages.MetricVec,
		m.statsdWorkers.MetricVec, m.statsdMalformed.MetricVec,
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.reloadDuration, m.healthDuration, m.healthUp,
		m.httpRequests, m.httpDuration, m.logMessages, m.statsdWorkers, m.statsdMalformed,
		m.scrapeErrors, m.featureEnabled, m.apps, buildInfo(opts.Version),
	)
	if es, ok := src.(ErrorSource); ok {
		m.reg.MustRegister(errorsCollector{es})
	}
	return m
}

// Registry returns the registry that /metrics serves, for callers that want
// to Gather directly or register more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ReloadDone implements status.Observer: it records the reload's
// duration. The count by result, supervisor_reloads_total, is read from the
// app's snapshot at scrape time (AppSnapshot.Reloads, which a self-upgrade
// hands over), so it needs no event here. It never blocks.
func (m *Metrics) ReloadDone(app, _ string, d time.Duration) {
	m.reloadDuration.WithLabelValues(app).Observe(d.Seconds())
}

// HealthChecked implements status.Observer: it records the check's
// duration and remembers its verdict as supervisor_health_up. It never blocks.
func (m *Metrics) HealthChecked(app string, ok bool, d time.Duration) {
	m.healthDuration.WithLabelValues(app).Observe(d.Seconds())
	up := 0.0
	if ok {
		up = 1
	}
	m.healthUp.WithLabelValues(app).Set(up)
}

// SetFeatures sets supervisor_feature_enabled for each feature: 1 when
// enabled[feature] is true, else 0.
func (m *Metrics) SetFeatures(enabled map[string]bool) {
	for f, on := range enabled {
		v := 0.0
		if on {
			v = 1
		}
		m.featureEnabled.WithLabelValues(f).Set(v)
	}
}

// Forget deletes every event-driven and statsd series of app, for an app
// removed from the configuration. Close the app's StatsdBridge first: a live
// bridge keeps updating series that Forget has detached. Snapshot-derived
// series disappear by themselves once the Source stops reporting the app.
func (m *Metrics) Forget(app string) {
	for _, v := range m.perAppCollectors {
		v.DeletePartialMatch(prometheus.Labels{"app": app})
	}
}
