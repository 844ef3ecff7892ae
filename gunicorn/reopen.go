package gunicorn

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// ReopenLogs asks the Gunicorn master pid to reopen its own log files
// (USR1, after an external logrotate moved them). A master already gone is
// no error; any other failure names the master.
func ReopenLogs(pid int) error {
	if err := unix.Kill(pid, unix.SIGUSR1); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("USR1 to master %d: %w", pid, err)
	}
	return nil
}
