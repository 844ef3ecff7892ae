// Package core holds end-to-end tests of the foundation: the supervisor runs
// Gunicorn from a virtualenv on sockets it holds, restarts it, stops it.
package core

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
