// Package workers holds end-to-end tests of the supervisor's control of
// Gunicorn workers: a workers range ("2..8") scaled from the accept queue
// under a load step, and max_worker_rss recycling a leaking worker with a
// graceful TERM while the app serves without a failed request. Real
// Gunicorn and Flask, real signals, hey for load.
package workers

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
