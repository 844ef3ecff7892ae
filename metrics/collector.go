package metrics

import (
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/gunisup/supervisor/listen/sockdiag"
	"github.com/gunisup/supervisor/listen/steer"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/status"
)

func appDesc(name, help string, extra ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, append([]string{"app"}, extra...), nil)
}

var (
	descAppUp = appDesc("app_up",
		"1 if the app is in state running, else 0.")
	descAppState = appDesc("app_state",
		"1 for the app's current lifecycle state, 0 for every other state.", "state")
	descAppStart = appDesc("app_start_time_seconds",
		"Unix time the current generation started; absent when none runs.")
	descAppRestarts = appDesc("app_restarts_total",
		"Restarts of the app by the supervisor since it was loaded.")
	descAppLastExit = appDesc("app_last_exit_code",
		"Shell-style status of the last generation exit (code, or 128+signal); absent before the first exit.")
	descAppWorkers = appDesc("app_workers",
		"Live worker processes of the current generation's master.")
	descWorkersTarget = appDesc("app_workers_target",
		"Worker target of an app with a workers range (MIN..MAX), which the supervisor scales from the accept queue and the workers' busy ratio; absent for a fixed count.")
	descWorkerRecycled = appDesc("worker_recycled_total",
		"Gunicorn workers the supervisor sent a graceful TERM to recycle them, by reason (rss: resident memory above max_worker_rss); Gunicorn apps only.", "reason")
	descAppCPU = appDesc("app_cpu_seconds_total",
		"User and system CPU time of the process tree rooted at the master, including reaped descendants.")
	descAppRSS = appDesc("app_resident_memory_bytes",
		"Resident memory summed over the process tree rooted at the master.")
	descAppFDs = appDesc("app_open_fds",
		"Open file descriptors summed over the process tree rooted at the master.")
	descAppProcs = appDesc("app_processes",
		"Processes of the app: those in its cgroup where it has one, else the tree rooted at the master, the master included.")
	descReloads = appDesc("reloads_total",
		"Finished reloads by result (ok, rolled_back, failed), 0 for every result from the first scrape; kept across supctl upgrade.", "result")
	descSteering = appDesc("listener_steering",
		"1 for how new connections reach the app's generations on a listener (bpf: a socket per generation, steered by the kernel; rename: a Unix socket per generation, switched by renaming its path; shared: one socket), 0 for the other modes.", "listener", "mode")
	descQueueLen = appDesc("listener_queue_length",
		"Connections waiting in the accept queue of a held listener.", "listener")
	descQueueMax = appDesc("listener_queue_max",
		"Accept queue capacity (listen backlog as the kernel applies it) of a held listener.", "listener")
	descLogDropped = appDesc("log_dropped_lines_total",
		"Output lines of the app that never reached its log sink (queue full or writes failing).")
)

// appCollector computes per-app metrics at scrape time from one Snapshots()
// call, one scan of /proc and at most one sock_diag dump.
type appCollector struct {
	src      Source
	procRoot string
	logger   *slog.Logger
	errors   *prometheus.CounterVec
}

// Describe implements prometheus.Collector.
func (c *appCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		descAppUp, descAppState, descAppStart, descAppRestarts, descAppLastExit, descAppWorkers, descWorkersTarget, descWorkerRecycled,
		descAppCPU, descAppRSS, descAppFDs, descAppProcs, descReloads, descSteering, descQueueLen, descQueueMax, descLogDropped,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector. Metrics that cannot be read
// (process gone, descriptor closed) are left out rather than reported as 0.
func (c *appCollector) Collect(ch chan<- prometheus.Metric) {
	snaps := c.src.Snapshots()
	if len(snaps) == 0 {
		return
	}

	var tree *proc.Tree
	for _, s := range snaps {
		if s.MasterPID > 0 {
			t, err := proc.NewTree(c.procRoot)
			if err != nil {
				c.fail("procfs", err)
			} else {
				tree = t
			}
			break
		}
	}
	queues := queueReader{r: sockdiag.Reader{Fail: c.fail}}

	for _, s := range snaps {
		gauge := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- constMetric(d, prometheus.GaugeValue, v, append([]string{s.Name}, extra...)...)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- constMetric(d, prometheus.CounterValue, v, s.Name)
		}
		gauge(descAppUp, boolFloat(s.State == status.Running))
		for _, st := range status.States {
			gauge(descAppState, boolFloat(s.State == st), st.String())
		}
		if !s.Started.IsZero() {
			gauge(descAppStart, float64(s.Started.UnixNano())/1e9)
		}
		counter(descAppRestarts, float64(s.Restarts))
		for _, o := range reload.Outcomes {
			ch <- constMetric(descReloads, prometheus.CounterValue, float64(s.Reloads[string(o)]), s.Name, string(o))
		}
		if s.LastExit != nil {
			gauge(descAppLastExit, float64(s.LastExit.ShellCode()))
		}
		gauge(descAppWorkers, float64(len(s.WorkerPIDs)))
		if s.WorkersTarget > 0 {
			gauge(descWorkersTarget, float64(s.WorkersTarget))
		}
		if s.Kind == "gunicorn" {
			ch <- constMetric(descWorkerRecycled, prometheus.CounterValue, float64(s.WorkersRecycled), s.Name, "rss")
		}
		counter(descLogDropped, float64(s.LogDropped))

		if tree != nil && s.MasterPID > 0 {
			if u, ok := usage(tree, s.MasterPID, c.fail); ok {
				counter(descAppCPU, u.cpuSeconds)
				gauge(descAppRSS, float64(u.rssBytes))
				gauge(descAppFDs, float64(u.fds))
				procs := u.processes
				if s.Processes > 0 {
					procs = s.Processes // the cgroup's count also has processes that left the tree
				}
				gauge(descAppProcs, float64(procs))
			}
		}

		for _, l := range s.Listeners {
			if l.Steering != "" {
				for _, mode := range steer.Modes() {
					gauge(descSteering, boolFloat(l.Steering == string(mode)), l.Address, string(mode))
				}
			}
			q, ok := queues.read(l)
			if !ok {
				continue
			}
			gauge(descQueueLen, float64(q.Length), l.Address)
			gauge(descQueueMax, float64(q.Max), l.Address)
		}
	}
}

// fail records a scrape-time error; the affected series are skipped.
func (c *appCollector) fail(source string, err error) {
	c.errors.WithLabelValues(source).Inc()
	c.logger.Debug("metrics: scrape error", "source", source, "err", err)
}

// constMetric is prometheus.MustNewConstMetric without the panic: a label
// mismatch (a bug) turns into a scrape error naming the metric.
func constMetric(d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) prometheus.Metric {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(d, err)
	}
	return m
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
