package supctl

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
	"time"

	"github.com/gunisup/supervisor/control"
)

// Version is supctl's version, set at build time with
// -ldflags "-X github.com/gunisup/supervisor/internal/supctl.Version=...".
// Empty means: the module version the Go toolchain stamped into the binary.
var Version = ""

// versionTimeout bounds the question to the supervisor in `supctl version`,
// which must answer promptly whether or not a supervisor runs.
const versionTimeout = 2 * time.Second

// ownVersion returns Version, else the main module's stamped version, else "dev".
func ownVersion() string {
	if Version != "" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// versions prints supctl's version on stdout, then the version of the
// supervisor answering on path. A supervisor that does not answer within
// versionTimeout is noted on stderr: `supctl version` succeeds without one.
func versions(ctx context.Context, c *control.Client, path string, stdout, stderr io.Writer) {
	fmt.Fprintf(stdout, "supctl %s\n", ownVersion())
	ctx, cancel := context.WithTimeout(ctx, versionTimeout)
	defer cancel()
	v, err := c.Version(ctx)
	if err != nil {
		if hint := permissionHint(err); hint != err {
			fmt.Fprintf(stderr, "supctl: cannot ask the supervisor: %v\n", hint)
			return
		}
		fmt.Fprintf(stderr, "supctl: no supervisor answers on %s: %v\n", path, err)
		return
	}
	fmt.Fprintf(stdout, "supervisor %s (pid %d) on %s\n", v.Version, v.PID, path)
}
