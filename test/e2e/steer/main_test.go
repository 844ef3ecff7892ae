// Package steer holds end-to-end tests of per-generation steering through
// a real proxy: nginx in front of an app's Unix socket (rename steering),
// and the same reloads on a TCP listener (BPF steering where available).
// A release that answers 500 everywhere is rolled back without any client
// seeing it; good releases swap with no failed request.
//
// The short test runs with the other e2e packages; the acceptance run
// (three bad releases and a good one under at least 30 s of load, twenty
// timed swaps) is built with -tags soak (bench/steer.sh).
package steer

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
