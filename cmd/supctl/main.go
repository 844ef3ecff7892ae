// Command supctl controls a running supervisor over its control socket.
// Exit status: 0 ok, 1 operation failed, 2 usage error, 3 cannot connect.
package main

import (
	"fmt"
	"os"

	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/internal/supctl"
)

func main() {
	err := supctl.Run(os.Args[1:], os.Stdout, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "supctl:", err)
	}
	os.Exit(exitcode.Code(err))
}
