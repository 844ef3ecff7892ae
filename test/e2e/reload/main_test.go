// Package reload holds end-to-end tests of zero-downtime reloads: the real
// supervisor and supctl binaries replace a Gunicorn generation under load,
// with good releases (swap and usr2), broken ones (import error, failing
// health check, hanging boot), concurrent requests, signals in the middle of
// a reload, and a long run that watches the supervisor for leaks.
package reload

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

// TestMain removes the binaries and virtualenv the tests built. Tests that
// call t.Parallel start no load generator and share nothing with another
// test (each has its own directory, ephemeral ports, cgroups and process
// mark): they wait on timers or on a reload, so two of them overlap without
// changing what either measures. The tests under load run one at a time.
func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
