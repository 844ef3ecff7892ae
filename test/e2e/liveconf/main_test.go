// Package liveconf holds end-to-end tests of live configuration changes:
// `supctl reread`, `supctl update` and SIGHUP against real Gunicorn apps
// under load.
package liveconf

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
