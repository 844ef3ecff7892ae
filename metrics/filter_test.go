package metrics

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestFilteredScrape: ?app=A&prefix=P serves only the families named P...
// and of them A's series; without a filter the whole registry is served.
func TestFilteredScrape(t *testing.T) {
	m := New(&fixedSource{}, Options{})
	routes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "supervisor_route_requests_total", Help: "test"}, []string{"app", "route"})
	m.Registry().MustRegister(routes)
	routes.WithLabelValues("web", "/").Add(3)
	routes.WithLabelValues("api", "/x").Add(5)
	body := scrape(t, m.Handler(nil), "/metrics?app=web&prefix=supervisor_route_", http.StatusOK)
	if !strings.Contains(body, `supervisor_route_requests_total{app="web",route="/"} 3`) {
		t.Errorf("filtered scrape lacks web's series:\n%s", body)
	}
	for _, not := range []string{`app="api"`, "go_goroutines", "supervisor_build_info"} {
		if strings.Contains(body, not) {
			t.Errorf("filtered scrape has %s:\n%s", not, body)
		}
	}
	if full := scrape(t, m.Handler(nil), "/metrics", http.StatusOK); !strings.Contains(full, `app="api"`) || !strings.Contains(full, "go_goroutines") {
		t.Errorf("full scrape lacks series")
	}
}
