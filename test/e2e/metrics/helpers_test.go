package metrics

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// webOpts shapes the one-app configuration of a test.
type webOpts struct {
	// Listen is the app's listen value ("tcp://127.0.0.1:0" by default).
	Listen string
	// Health is the body of [app.web.health] ("" for no health check).
	Health string
	// Flagged writes an app whose GET /healthz answers 500 while the file
	// DIR/unhealthy exists, instead of testenv's OK release.
	Flagged bool
	// Variant is the testenv release variant when not Flagged.
	Variant testenv.Variant
	// Source, when not empty, is the app's app.py (instead of testenv's
	// release or the Flagged app).
	Source string
	// Keys are more keys of the app's table (such as args = [...]).
	Keys string
}

// flaggedApp is a Flask app whose health follows a file: GET /healthz is
// 500 while the file exists, 200 otherwise.
const flaggedApp = `import os

from flask import Flask

FLAG = %q

app = Flask(__name__)


@app.route("/")
def index():
    return "ok\n"


@app.route("/healthz")
def healthz():
    if os.path.exists(FLAG):
        return "unhealthy\n", 500
    return "ok\n"
`

// web is a running supervisor with the app "web" running, and the bound
// address of its metrics endpoint.
type web struct {
	*e2e.Supervisor
	// HTTP is the metrics endpoint's bound host:port.
	HTTP string
	// Flag is the file that makes a Flagged app unhealthy.
	Flag string
}

// startWeb starts the supervisor and waits until web runs (and is healthy
// when it has a check) and its metrics endpoint answers.
func startWeb(t *testing.T, o webOpts) *web {
	t.Helper()
	if o.Listen == "" {
		o.Listen = "tcp://127.0.0.1:0"
	}
	// One Gunicorn app "web" with two sync workers; the metrics endpoint
	// listens on an ephemeral loopback port.
	app := e2e.App{Listen: []string{o.Listen}, Extra: o.Keys}
	if o.Health != "" {
		app.Extra += "\n[app.web.health]\n" + o.Health + "\n"
	}
	cfg := e2e.Config{HTTP: "127.0.0.1:0", ShutdownTimeout: "30s", Apps: []e2e.App{app}}.String()
	w := &web{}
	s := e2e.Start(t, e2e.Options{Config: cfg, Setup: func(dir string) {
		app := filepath.Join(dir, "app")
		if err := os.MkdirAll(app, 0o755); err != nil {
			t.Fatal(err)
		}
		w.Flag = filepath.Join(dir, "unhealthy")
		if o.Source != "" {
			if err := os.WriteFile(filepath.Join(app, "app.py"), []byte(o.Source), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		if !o.Flagged {
			testenv.WriteRelease(t, app, testenv.Release{Version: "1", Variant: o.Variant})
			return
		}
		src := fmt.Sprintf(flaggedApp, w.Flag)
		if err := os.WriteFile(filepath.Join(app, "app.py"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}})
	w.Supervisor = s
	s.WaitState("web", control.StateRunning, 90*time.Second)
	w.HTTP = metricsAddr(t, s)
	testenv.WaitFor(t, 30*time.Second, "metrics endpoint answering /healthz", func() bool {
		st, _, err := get(w.HTTP, "/healthz")
		return err == nil && st == http.StatusOK
	})
	return w
}

// metricsAddr reads the metrics listener's bound address from the control
// API; it fails the test when the supervisor reports none.
func metricsAddr(t *testing.T, s *e2e.Supervisor) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := s.Client().Status(ctx, "")
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.Supervisor.HTTP == "" || strings.HasSuffix(st.Supervisor.HTTP, ":0") {
		t.Fatalf("supervisor reports metrics address %q; want the bound 127.0.0.1:PORT", st.Supervisor.HTTP)
	}
	return st.Supervisor.HTTP
}

// httpClient is generous: the machine is shared and binaries may run with
// the race detector.
var httpClient = &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}

// get sends GET path to addr and returns the status and the body.
func get(addr, path string) (int, string, error) {
	resp, err := httpClient.Get("http://" + addr + path)
	if err != nil {
		return 0, "", fmt.Errorf("GET http://%s%s: %w", addr, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, string(b), fmt.Errorf("GET http://%s%s: reading body: %w", addr, path, err)
	}
	return resp.StatusCode, string(b), nil
}

// scrape is one parsed /metrics answer.
type scrape struct {
	Raw      string
	Families map[string]*dto.MetricFamily
}

// scrapeMetrics fetches and parses /metrics (failing the test on error).
func scrapeMetrics(t testing.TB, addr string) scrape {
	t.Helper()
	sc, err := tryScrape(addr)
	if err != nil {
		t.Fatal(err)
	}
	return sc
}

func tryScrape(addr string) (scrape, error) {
	st, body, err := get(addr, "/metrics")
	if err != nil {
		return scrape{}, err
	}
	if st != http.StatusOK {
		return scrape{}, fmt.Errorf("GET /metrics from %s: status %d: %.300s", addr, st, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		return scrape{}, fmt.Errorf("parse /metrics from %s: %w", addr, err)
	}
	return scrape{Raw: body, Families: fams}, nil
}

// labelsMatch reports whether m carries every label of want.
func labelsMatch(m *dto.Metric, want map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := want[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(want)
}

// sum adds the values of every series of name matching want (counters,
// gauges and untyped); found is false when no series matched.
func (s scrape) sum(name string, want map[string]string) (total float64, found bool) {
	mf := s.Families[name]
	if mf == nil {
		return 0, false
	}
	for _, m := range mf.GetMetric() {
		if !labelsMatch(m, want) {
			continue
		}
		found = true
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total, found
}

// histogram is a cumulative histogram: Counts[i] observations <= Bounds[i];
// the last bound is +Inf.
type histogram struct {
	Bounds []float64
	Counts []float64
	Count  float64
	Sum    float64
}

// histogram returns the histogram name{want} (ok false if absent).
func (s scrape) histogram(name string, want map[string]string) (histogram, bool) {
	mf := s.Families[name]
	if mf == nil {
		return histogram{}, false
	}
	for _, m := range mf.GetMetric() {
		if !labelsMatch(m, want) || m.Histogram == nil {
			continue
		}
		h := m.GetHistogram()
		out := histogram{Count: float64(h.GetSampleCount()), Sum: h.GetSampleSum()}
		for _, b := range h.GetBucket() {
			out.Bounds = append(out.Bounds, b.GetUpperBound())
			out.Counts = append(out.Counts, float64(b.GetCumulativeCount()))
		}
		if len(out.Bounds) == 0 || !math.IsInf(out.Bounds[len(out.Bounds)-1], 1) {
			out.Bounds = append(out.Bounds, math.Inf(1))
			out.Counts = append(out.Counts, out.Count)
		}
		return out, true
	}
	return histogram{}, false
}

// minus is h - before, bucket by bucket (the observations made in between).
func (h histogram) minus(before histogram) (histogram, error) {
	if len(before.Bounds) == 0 {
		return h, nil
	}
	if len(before.Bounds) != len(h.Bounds) {
		return histogram{}, fmt.Errorf("bucket layout changed: %v -> %v", before.Bounds, h.Bounds)
	}
	out := histogram{Bounds: h.Bounds, Count: h.Count - before.Count, Sum: h.Sum - before.Sum}
	for i := range h.Counts {
		out.Counts = append(out.Counts, h.Counts[i]-before.Counts[i])
	}
	return out, nil
}

// quantile is PromQL's histogram_quantile: linear interpolation inside the
// bucket holding rank q*count, the lower bound of the first bucket being 0;
// a rank in the +Inf bucket yields the highest finite bound. NaN without
// observations.
func (h histogram) quantile(q float64) float64 {
	if h.Count == 0 || len(h.Bounds) < 2 {
		return math.NaN()
	}
	rank := q * h.Counts[len(h.Counts)-1]
	i := sort.Search(len(h.Counts), func(i int) bool { return h.Counts[i] >= rank })
	if i >= len(h.Bounds)-1 {
		return h.Bounds[len(h.Bounds)-2]
	}
	lower, prev := 0.0, 0.0
	if i > 0 {
		lower, prev = h.Bounds[i-1], h.Counts[i-1]
	}
	inBucket := h.Counts[i] - prev
	if inBucket == 0 {
		return h.Bounds[i]
	}
	return lower + (h.Bounds[i]-lower)*(rank-prev)/inBucket
}

// bucketIndex is the index of the bucket holding v: the first bound >= v.
func (h histogram) bucketIndex(v float64) int {
	return sort.SearchFloat64s(h.Bounds, v)
}
