// Package upgrade holds end-to-end tests of the supervisor's in-place
// self-upgrade (`supctl upgrade`, SIGUSR2): the supervisor is started from a
// path the test controls, a differently versioned build (or a broken one) is
// installed over that path with an atomic rename, and the upgrade must keep
// the supervisor's PID, every app's processes and every held socket, lose no
// request under load, and refuse (or roll back) a binary that cannot take over.
package upgrade

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

// helperVar selects a fake-process mode when the test binary is re-executed
// as an app of kind "process" (the TestMain pattern).
const helperVar = "UPGRADE_TEST_HELPER"

// TestMain runs a helper mode when helperVar is set, else the tests, and
// removes the binaries and virtualenv they built. Tests that call
// t.Parallel start no load generator and share nothing with another test
// (each has its own directory and installed binary, ephemeral ports,
// cgroups and process mark), so two of them overlap without changing what
// either measures. The tests under load run one at a time.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperVar); mode != "" {
		os.Exit(runHelper(mode))
	}
	defer e2e.Cleanup()
	m.Run()
}

// runHelper is a fake app process. Mode "block" prints "ready", waits for
// SIGTERM and exits 0.
func runHelper(mode string) int {
	switch mode {
	case "block":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		fmt.Println("got SIGTERM")
		return 0
	}
	fmt.Fprintf(os.Stderr, "unknown %s mode %q\n", helperVar, mode)
	return 100
}
