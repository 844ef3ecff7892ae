package metrics

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzStatsdDatagram feeds one datagram to a fresh sink of app "web" (its
// series reset) and checks the series it leaves: no count or duration is
// NaN or negative; what a single line adds is finite; the status and level
// labels stay within their fixed sets (bounded cardinality); malformed lines
// are counted at most once each.
func FuzzStatsdDatagram(f *testing.F) {
	m := New(&fixedSource{}, Options{})
	statsdVecs := []interface {
		prometheus.Collector
		Reset()
	}{m.httpRequests, m.httpDuration, m.logMessages, m.statsdWorkers, m.statsdMalformed}
	reg := prometheus.NewRegistry()
	for _, v := range statsdVecs {
		reg.MustRegister(v)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, v := range statsdVecs {
			v.Reset() // each input starts from no series at all
		}
		sink := newStatsdSink("web", m)
		sink.datagram(data)

		lines := 0
		for l := range strings.SplitSeq(string(data), "\n") {
			if strings.TrimSpace(l) != "" {
				lines++
			}
		}
		// One line can add at most one finite amount; more lines may add
		// up past the largest float64, which only +Inf can represent.
		check := func(what string, v float64, mayBeNegative bool) {
			if math.IsNaN(v) || (v < 0 && !mayBeNegative) || (lines <= 1 && math.IsInf(v, 0)) {
				t.Errorf("%s = %v after %q", what, v, data)
			}
		}
		check("requests", math.Float64frombits(sink.requests.Load()), false)

		mfs, err := reg.Gather()
		if err != nil {
			t.Fatalf("gather: %v", err)
		}
		for _, mf := range mfs {
			for _, s := range mf.GetMetric() {
				labels := map[string]string{}
				for _, lp := range s.GetLabel() {
					labels[lp.GetName()] = lp.GetValue()
				}
				name := mf.GetName()
				switch name {
				case "supervisor_http_requests_total":
					check(name, s.GetCounter().GetValue(), false)
					if !validStatus(labels["status"]) {
						t.Errorf("status label %q after %q", labels["status"], data)
					}
				case "supervisor_app_log_messages_total":
					check(name, s.GetCounter().GetValue(), false)
					if !logLevels[labels["level"]] {
						t.Errorf("level label %q after %q", labels["level"], data)
					}
				case "supervisor_statsd_malformed_total":
					if v := s.GetCounter().GetValue(); v > float64(lines) {
						t.Errorf("%d lines, %v malformed: %q", lines, v, data)
					}
				case "supervisor_http_request_duration_seconds":
					h := s.GetHistogram()
					check(name+" sum", h.GetSampleSum(), false)
					if h.GetSampleCount() > uint64(lines) {
						t.Errorf("%d lines, %d durations: %q", lines, h.GetSampleCount(), data)
					}
				case "supervisor_app_statsd_workers":
					// A gauge delta may take it below zero; never to NaN.
					check(name, s.GetGauge().GetValue(), true)
				}
			}
		}
	})
}
