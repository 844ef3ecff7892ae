// Package pid1 holds end-to-end tests of the supervisor as PID 1 of a
// container (a new PID namespace made with unshare) and as a systemd
// service: it reaps every orphan, keeps reporting its apps' exit codes while
// orphans die around them, turns signals into a graceful drain (or a kill on
// the second one), exits with an exit_with app's status, speaks sd_notify
// (READY, STATUS, RELOADING, STOPPING, WATCHDOG) on a real notification
// socket, and serves on a socket passed by systemd socket activation.
package pid1

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
