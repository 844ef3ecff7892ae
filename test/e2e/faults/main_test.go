// Package faults is the published fault table of the supervisor: one
// table-driven test (TestFaults) that injects one fault per row into a real
// supervisor running real Gunicorn under load, and asserts the behaviour the
// row states, including that no request fails that could have been served.
// docs/reliability.md lists every row with its observed figures. TestChaos
// repeats the chaos row (make chaos); the soak (build tag soak, make soak)
// runs 1,000 reloads under load and watches the supervisor's resources.
package faults

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
