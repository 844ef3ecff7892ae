// Command supervisor runs Python web apps served by Gunicorn (and plain
// processes) from one TOML file, holding their listening sockets. See
// daemon.Run for the exit statuses.
package main

import (
	"fmt"
	"os"

	"github.com/gunisup/supervisor/daemon"
	"github.com/gunisup/supervisor/internal/exitcode"
)

func main() {
	err := daemon.Run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil && exitcode.Code(err) != 0 {
		if msg := err.Error(); msg != "" && !isBareExit(err) {
			fmt.Fprintln(os.Stderr, "supervisor:", msg)
		}
	}
	os.Exit(exitcode.Code(err))
}

// isBareExit reports an exit status with no message (an exit_with app's).
func isBareExit(err error) bool {
	e, ok := err.(*exitcode.Error)
	return ok && e.Err == nil
}
