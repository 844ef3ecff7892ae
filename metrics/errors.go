package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunisup/supervisor/errinbox"
)

// ErrorSource yields every app's error inbox counters (see errinbox). The
// supervisor's Manager implements it; a Source that does too gets the
// series below.
type ErrorSource interface {
	ErrorCounts() map[string]errinbox.Counts
}

var (
	descExceptions = appDesc("app_exceptions_total",
		"Python tracebacks on the app's stderr, by exception type (at most 50 type names per app, the rest as other).", "exception")
	descWorkerTimeouts = appDesc("worker_timeouts_total",
		"Gunicorn WORKER TIMEOUT lines on the app's stderr: workers the master aborted for being silent beyond their timeout.")
	descWorkerKilled = appDesc("worker_killed_total",
		"Gunicorn workers the master reported killed by a signal (SIGKILL: often the OOM killer), by signal name.", "signal")
	descInboxDropped = appDesc("error_inbox_dropped_lines_total",
		"Stderr lines of the app that the traceback parser fell too far behind to read (never holding the app back).")
)

// errorsCollector exports the error inboxes' counters at scrape time.
type errorsCollector struct{ src ErrorSource }

// Describe implements prometheus.Collector.
func (c errorsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descExceptions, descWorkerTimeouts, descWorkerKilled, descInboxDropped} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. An app's timeout and dropped
// counters are exported from 0; exception and signal series appear with
// their first occurrence.
func (c errorsCollector) Collect(ch chan<- prometheus.Metric) {
	for app, n := range c.src.ErrorCounts() {
		for exc, v := range n.Exceptions {
			ch <- constMetric(descExceptions, prometheus.CounterValue, float64(v), app, exc)
		}
		for sig, v := range n.WorkerKilled {
			ch <- constMetric(descWorkerKilled, prometheus.CounterValue, float64(v), app, sig)
		}
		ch <- constMetric(descWorkerTimeouts, prometheus.CounterValue, float64(n.WorkerTimeouts), app)
		ch <- constMetric(descInboxDropped, prometheus.CounterValue, float64(n.Dropped), app)
	}
}
