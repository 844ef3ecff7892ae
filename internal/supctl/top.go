package supctl

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

const topUsage = "usage: supctl top [--interval 1s] [--routes APP]"

// topOptions say how `supctl top` draws.
type topOptions struct {
	interval time.Duration
	// tty: redraw in place every interval until ctx ends; else print the
	// table once, from two readings interval apart.
	tty bool
	// color marks states in color (tty and NO_COLOR unset).
	color bool
	// frames, when > 0, ends a tty run after that many tables (tests).
	frames int
}

// topCmd runs `supctl top`: every app's state, CPU, RSS, workers, accept
// queue, request rate, p99 latency and restarts, from the series the
// control API serves for it (GET /v1/top: the names and labels of
// /metrics, computed without a /proc scan). It reads no status, which
// scans /proc.
func topCmd(ctx context.Context, c *control.Client, args []string, out io.Writer) error {
	flags, pos, err := splitFlags(args, map[string]bool{"interval": true, "routes": true})
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return exitcode.New(ExitUsage, errors.New(topUsage))
	}
	o := topOptions{interval: time.Second}
	if s, ok := flags["interval"]; ok {
		d, err := time.ParseDuration(s)
		if err != nil || d < 100*time.Millisecond {
			return exitcode.New(ExitUsage, fmt.Errorf("--interval wants a duration of at least 100ms, got %q: %s", s, topUsage))
		}
		o.interval = d
	}
	o.tty = isTerminal(out)
	_, noColor := os.LookupEnv("NO_COLOR")
	o.color = o.tty && !noColor
	if app, ok := flags["routes"]; ok {
		return runTopRoutes(ctx, c, out, app, o)
	}
	return runTop(ctx, c, out, o)
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// runTop reads the supervisor every o.interval and draws the table (see
// topOptions). It returns nil when ctx ends a tty run.
func runTop(ctx context.Context, c *control.Client, out io.Writer, o topOptions) error {
	read := func() (topReading, error) { return readTop(ctx, c) }
	draw := func(buf []byte, prev, cur topReading) []byte {
		return renderTop(buf, topRows(prev, cur), cur.at, o)
	}
	return refresh(ctx, out, o, read, draw)
}

// refresh is top's loop over readings of type R: a first reading, then
// every o.interval another, drawn against the one before into out; once
// when piped, until ctx ends (nil) or o.frames frames on a terminal. It
// returns the first error of read or of writing out.
func refresh[R any](ctx context.Context, out io.Writer, o topOptions, read func() (R, error), draw func(buf []byte, prev, cur R) []byte) error {
	prev, err := read()
	if err != nil {
		return err
	}
	tick := time.NewTicker(o.interval)
	defer tick.Stop()
	var buf []byte
	for frame := 1; ; frame++ {
		select {
		case <-ctx.Done():
			if o.tty {
				return nil
			}
			return ctx.Err()
		case <-tick.C:
		}
		cur, err := read()
		if err != nil {
			return err
		}
		buf = draw(buf[:0], prev, cur)
		if _, err := out.Write(buf); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		if !o.tty || (o.frames > 0 && frame >= o.frames) {
			return nil
		}
		prev = cur
	}
}

// topReading is one reading of the supervisor's metrics, by app.
type topReading struct {
	at   time.Time
	apps map[string]*appCounters
}

// appCounters are one app's values in a metrics reading.
type appCounters struct {
	// state is the label of supervisor_app_state that is 1 ("" if none).
	state                              string
	restarts                           float64
	cpu, rss, workers, queue, requests float64
	hasWorkers, hasQueue               bool
	// latency is the request duration histogram's cumulative buckets.
	latency []bucket
	apm     apmCounters
}

// readTop reads the series top shows (GET /v1/top; the whole of
// /v1/metrics from a supervisor that does not serve it: 404 or 501).
func readTop(ctx context.Context, c *control.Client) (topReading, error) {
	text, err := c.Top(ctx)
	if ae := (*control.APIError)(nil); errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusNotImplemented) {
		text, err = c.Metrics(ctx)
	}
	if err != nil {
		return topReading{}, err
	}
	r := topReading{at: time.Now(), apps: map[string]*appCounters{}}
	eachSample(text, func(s *sample) { r.add(s) })
	for _, a := range r.apps {
		slices.SortFunc(a.latency, func(x, y bucket) int { return cmp.Compare(x.le, y.le) })
	}
	return r, nil
}

// add records the samples top shows.
func (r *topReading) add(s *sample) {
	name, ok := strings.CutPrefix(s.name, "supervisor_")
	if !ok {
		return
	}
	app := s.labels["app"]
	if app == "" {
		return
	}
	a := r.apps[app]
	if a == nil {
		a = &appCounters{}
		r.apps[app] = a
	}
	a.apm.add(name, s)
	switch name {
	case "app_state":
		if s.value == 1 {
			a.state = s.labels["state"]
		}
	case "app_restarts_total":
		a.restarts = s.value
	case "app_cpu_seconds_total":
		a.cpu = s.value
	case "app_resident_memory_bytes":
		a.rss = s.value
	case "app_workers":
		a.workers, a.hasWorkers = s.value, true
	case "listener_queue_length":
		a.queue += s.value
		a.hasQueue = true
	case "http_requests_total":
		a.requests += s.value
	case "http_request_duration_seconds_bucket":
		le, err := strconv.ParseFloat(s.labels["le"], 64)
		if err == nil {
			a.latency = append(a.latency, bucket{le: le, count: s.value})
		}
	}
}

// topRow is one app's line of the table; NaN is a value not known.
type topRow struct {
	name, state                    string
	cpu, rss, workers, queue, rate float64
	p99, apdex, errPct             float64
	restarts                       int
}

// topRows computes a row for each app with a state in cur, sorted by
// name, from two readings: CPU, request rate and p99 over the time between
// them.
func topRows(prev, cur topReading) []topRow {
	dt := cur.at.Sub(prev.at).Seconds()
	var rows []topRow
	for _, name := range slices.Sorted(maps.Keys(cur.apps)) {
		c, p := cur.apps[name], prev.apps[name]
		if c.state == "" {
			continue
		}
		r := topRow{name: name, state: c.state, restarts: int(c.restarts), rss: c.rss,
			cpu: math.NaN(), workers: math.NaN(), queue: math.NaN(), rate: math.NaN(), p99: math.NaN(), errPct: math.NaN()}
		r.apdex, _ = apmColumns(&c.apm, &c.apm)
		if c.hasWorkers {
			r.workers = c.workers
		}
		if c.hasQueue {
			r.queue = c.queue
		}
		if p != nil && dt > 0 {
			r.cpu = max(c.cpu-p.cpu, 0) / dt * 100
			r.rate = max(c.requests-p.requests, 0) / dt
			r.p99 = quantile(0.99, bucketDelta(p.latency, c.latency))
			r.apdex, r.errPct = apmColumns(&p.apm, &c.apm)
		}
		rows = append(rows, r)
	}
	return rows
}

// bucketDelta returns the observations cur counts beyond prev, bucket by
// bucket (nil when the bounds differ: the histogram was reset).
func bucketDelta(prev, cur []bucket) []bucket {
	if len(prev) != len(cur) {
		if len(prev) == 0 {
			return cur
		}
		return nil
	}
	out := make([]bucket, len(cur))
	for i := range cur {
		if prev[i].le != cur[i].le {
			return nil
		}
		out[i] = bucket{le: cur[i].le, count: max(cur[i].count-prev[i].count, 0)}
	}
	return out
}
