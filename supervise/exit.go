package supervise

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

func describeExit(e ExitInfo) string {
	if e.Signal != 0 {
		return fmt.Sprintf("signal %d (%s)", e.Signal, unix.SignalName(syscall.Signal(e.Signal)))
	}
	return fmt.Sprintf("exit %d", e.Code)
}
