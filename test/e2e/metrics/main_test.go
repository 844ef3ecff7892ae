// Package metrics holds end-to-end tests of the supervisor's HTTP endpoint
// ([supervisor] http): /metrics read by promtool and by a real Prometheus,
// request counts and latency bridged from Gunicorn's statsd stream checked
// against hey, accept-queue gauges of frozen Gunicorn masters, the
// supervisor's idle CPU under a 1 s scrape, and /readyz following an app's
// health check. Every supervisor listens on 127.0.0.1:0 and the tests read
// the bound address from the control API (SupervisorInfo.HTTP).
package metrics

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
