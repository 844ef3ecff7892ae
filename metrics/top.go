package metrics

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/sockdiag"
	"github.com/gunisup/supervisor/status"
)

// TopSource is what TopHandler reads: the apps' published snapshots
// (without a /proc scan, see supervise.Manager.Published) and each app's
// cgroup directory ("" for none). The supervisor's Manager implements it.
type TopSource interface {
	Published() []status.AppSnapshot
	CgroupDir(app string) string
}

// TopHandler serves, in the Prometheus text format and under the names
// /metrics uses, the series `supctl top` reads, computed cheaply enough to
// be read every second: supervisor_app_state (only the current state's
// series), app_restarts_total, app_workers (Gunicorn apps: the master's
// children), app_cpu_seconds_total and app_resident_memory_bytes (apps
// that run), listener_queue_length, and the series of topVecs, held in
// memory, and the collectors of extra (route metrics' part, see
// apm.Set.Top). CPU and memory come from the app's cgroup (cpu.stat usage_usec;
// memory.stat anon plus file_mapped) where it has one, else (or for what
// its controllers do not count) from /proc/PID/stat of the master and its
// children only. No process is listed, no descriptor counted, and the
// files read stay open between reads (see topFiles): one pread(2) per
// file. At most 2 reads run at once.
func (m *Metrics) TopHandler(src TopSource, extra ...prometheus.Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(&topCollector{src: src, procRoot: m.apps.procRoot, fail: m.apps.fail, pageSize: float64(os.Getpagesize())})
	reg.MustRegister(m.topVecs()...)
	reg.MustRegister(extra...)
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:            slogPrinter{m.logger},
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 2,
		Timeout:             10 * time.Second,
	})
}

// topVecs are the series TopHandler serves as /metrics does: the
// statsd-bridged request counters (by status) and duration histogram. A
// column of top that needs another in-memory series adds its vector here.
func (m *Metrics) topVecs() []prometheus.Collector {
	return []prometheus.Collector{m.httpRequests, m.httpDuration}
}

// topCollector computes TopHandler's per-app series.
type topCollector struct {
	src      TopSource
	procRoot string
	fail     func(string, error)
	pageSize float64
	files    topFiles
}

// Describe implements prometheus.Collector.
func (c *topCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descAppState, descAppRestarts, descAppWorkers, descAppCPU, descAppRSS, descQueueLen} {
		ch <- d
	}
}

// Collect implements prometheus.Collector; a value that cannot be read is
// left out.
func (c *topCollector) Collect(ch chan<- prometheus.Metric) {
	c.files.begin()
	defer c.files.end()
	queues := queueReader{r: sockdiag.Reader{Fail: c.fail}}
	for _, s := range c.src.Published() {
		c.collectApp(ch, s, &queues)
	}
}

// collectApp sends s's series.
func (c *topCollector) collectApp(ch chan<- prometheus.Metric, s status.AppSnapshot, queues *queueReader) {
	ch <- constMetric(descAppState, prometheus.GaugeValue, 1, s.Name, s.State.String())
	ch <- constMetric(descAppRestarts, prometheus.CounterValue, float64(s.Restarts), s.Name)
	var kids []int
	if s.MasterPID > 0 && s.Kind == config.KindGunicorn.String() {
		kids = c.children(s.MasterPID)
		ch <- constMetric(descAppWorkers, prometheus.GaugeValue, float64(len(kids)), s.Name)
	}
	if s.MasterPID == 0 {
		c.queues(ch, s, queues)
		return // nothing runs: no CPU or memory to show
	}
	dir := c.src.CgroupDir(s.Name)
	cpu, cpuOK := c.cgroupValue(dir, "cpu.stat", 1e-6, "usage_usec")
	rss, rssOK := c.cgroupValue(dir, "memory.stat", 1, "anon", "file_mapped")
	if !cpuOK || !rssOK {
		if pcpu, prss, ok := c.procsUsage(append([]int{s.MasterPID}, kids...)); ok {
			cpu, rss = orElse(cpuOK, cpu, pcpu), orElse(rssOK, rss, prss)
			cpuOK, rssOK = true, true
		}
	}
	if cpuOK {
		ch <- constMetric(descAppCPU, prometheus.CounterValue, cpu, s.Name)
	}
	if rssOK {
		ch <- constMetric(descAppRSS, prometheus.GaugeValue, rss, s.Name)
	}
	c.queues(ch, s, queues)
}

// queues sends the accept queue length of each of s's listeners.
func (c *topCollector) queues(ch chan<- prometheus.Metric, s status.AppSnapshot, queues *queueReader) {
	for _, l := range s.Listeners {
		if q, ok := queues.read(l); ok {
			ch <- constMetric(descQueueLen, prometheus.GaugeValue, float64(q.Length), s.Name, l.Address)
		}
	}
}

// orElse is have when known, else other.
func orElse(known bool, have, other float64) float64 {
	if known {
		return have
	}
	return other
}

// children returns pid's children, as its main thread's children file
// lists them (Gunicorn forks its workers from it).
func (c *topCollector) children(pid int) []int {
	p := strconv.Itoa(pid)
	b, err := c.files.get(filepath.Join(c.procRoot, p, "task", p, "children"), false)
	if err != nil {
		return nil // exited
	}
	var out []int
	for _, f := range bytes.Fields(b) {
		if n, err := strconv.Atoi(string(f)); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// procsUsage sums the CPU seconds (reaped children included) and resident
// bytes of pids; ok is false when the first (the master) cannot be read.
func (c *topCollector) procsUsage(pids []int) (cpu, rss float64, ok bool) {
	for i, pid := range pids {
		b, err := c.files.get(filepath.Join(c.procRoot, strconv.Itoa(pid), "stat"), false)
		var u procUsage
		if err == nil {
			u, err = parseProcStat(b)
		}
		if err != nil {
			if i == 0 {
				return 0, 0, false
			}
			continue // exited since its parent listed it
		}
		cpu += float64(u.ticks) / userHZ
		rss += float64(u.rssPages) * c.pageSize
	}
	return cpu, rss, true
}

// cgroupValue sums keys of the flat keyed file name ("KEY VALUE" lines, as
// cgroup v2 writes them) of the cgroup at dir, times scale; ok is false
// for dir "", a file that cannot be read (its controller is not enabled
// there) or a key missing.
func (c *topCollector) cgroupValue(dir, name string, scale float64, keys ...string) (float64, bool) {
	if dir == "" {
		return 0, false
	}
	b, err := c.files.get(filepath.Join(dir, name), true)
	if err != nil {
		return 0, false
	}
	var sum uint64
	found := 0
	for line := range bytes.Lines(b) {
		k, v, ok := bytes.Cut(bytes.TrimSpace(line), []byte(" "))
		if !ok || !slices.Contains(keys, string(k)) {
			continue
		}
		n, err := strconv.ParseUint(string(v), 10, 64)
		if err != nil {
			c.fail("cgroup", fmt.Errorf("%s: %s: %w", filepath.Join(dir, name), k, err))
			return 0, false
		}
		sum += n
		found++
	}
	return float64(sum) * scale, found == len(keys)
}
