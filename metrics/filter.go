package metrics

import (
	"net/http"
	"slices"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// maxFilterValues bounds the app= and prefix= values of a filtered scrape.
const maxFilterValues = 16

// scrapeFilter is what a filtered scrape keeps: the families whose name
// starts with one of prefixes (any when none), and of them the series
// whose app label is one of apps (every series when none; a series without
// an app label is dropped once apps are given).
type scrapeFilter struct {
	apps, prefixes []string
}

// filterOf reads ?app=A&prefix=P (each repeatable); ok is false when the
// request asks for no filter.
func filterOf(r *http.Request) (f scrapeFilter, ok bool) {
	q := r.URL.Query()
	f.apps, f.prefixes = q["app"], q["prefix"]
	return f, len(f.apps)+len(f.prefixes) > 0
}

// keep narrows the gathered families in place and returns them.
func (f scrapeFilter) keep(mfs []*dto.MetricFamily) []*dto.MetricFamily {
	out := mfs[:0]
	for _, mf := range mfs {
		if len(f.prefixes) > 0 && !slices.ContainsFunc(f.prefixes, func(p string) bool { return strings.HasPrefix(mf.GetName(), p) }) {
			continue
		}
		if len(f.apps) > 0 {
			mf.Metric = slices.DeleteFunc(mf.Metric, func(m *dto.Metric) bool { return !slices.Contains(f.apps, appLabel(m)) })
		}
		if len(mf.Metric) > 0 {
			out = append(out, mf)
		}
	}
	return out
}

func appLabel(m *dto.Metric) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == "app" {
			return l.GetValue()
		}
	}
	return ""
}

// serveFiltered answers a scrape narrowed by f in the text format: what
// `supctl top --routes APP` reads, a fraction of a full scrape's bytes.
// The registry's collectors still all run.
func (m *Metrics) serveFiltered(w http.ResponseWriter, f scrapeFilter) {
	if len(f.apps) > maxFilterValues || len(f.prefixes) > maxFilterValues {
		http.Error(w, "too many app= or prefix= values", http.StatusBadRequest)
		return
	}
	mfs, err := m.reg.Gather()
	if err != nil {
		m.logger.Debug("metrics: filtered scrape", "err", err) // partial: serve what was gathered
	}
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	w.Header().Set("Content-Type", string(format))
	enc := expfmt.NewEncoder(w, format)
	for _, mf := range f.keep(mfs) {
		if err := enc.Encode(mf); err != nil {
			m.logger.Debug("metrics: write filtered scrape", "err", err)
			return
		}
	}
}
