// Package core holds end-to-end tests of the foundation: the supervisor runs
// Gunicorn from a virtualenv on sockets it holds, restarts it, stops it.
package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
)

// Helper modes: when helperVar is set, the test binary is a fake client
// process (re-executed, possibly under another uid) instead of the tests.
const (
	helperVar     = "CORE_E2E_HELPER"
	helperSockVar = "CORE_E2E_SOCK"
)

// TestMain runs a helper mode when helperVar is set, else the tests, and
// removes the binaries and virtualenv they built. Tests that call
// t.Parallel start no load generator and share nothing with another test
// (each has its own directory, ephemeral ports, cgroups and process mark):
// they wait on timers, so two of them overlap without changing what either
// measures. The tests under load run one at a time.
func TestMain(m *testing.M) {
	if mode := os.Getenv(helperVar); mode != "" {
		runHelper(mode, os.Stdout)
		return
	}
	defer e2e.Cleanup()
	m.Run()
}

// clientOutcome is what the "ctlclient" helper reports on stdout (one JSON
// line): Outcome is "ok", "forbidden" (the server's 403), "connect_error"
// (connect(2) itself failed; Errno names why) or "other".
type clientOutcome struct {
	Outcome string `json:"outcome"`
	Errno   string `json:"errno,omitempty"`
	Detail  string `json:"detail,omitempty"`
	UID     int    `json:"uid"`
	GID     int    `json:"gid"`
	Groups  []int  `json:"groups"`
}

// runHelper runs a helper mode, writing its result to w. Its exit status is
// always 0: the result is the JSON line.
func runHelper(mode string, w io.Writer) {
	out := clientOutcome{UID: os.Getuid(), GID: os.Getgid()}
	out.Groups, _ = os.Getgroups() // informative only
	switch mode {
	case "ctlclient":
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := control.NewClient(os.Getenv(helperSockVar)).Status(ctx, "")
		var api *control.APIError
		var ce *control.ConnectError
		switch {
		case err == nil:
			out.Outcome = "ok"
		case errors.As(err, &api) && api.Status == 403:
			out.Outcome = "forbidden"
			out.Detail = string(api.Code) + ": " + api.Error()
		case errors.As(err, &ce):
			out.Outcome = "connect_error"
			out.Detail = err.Error()
			var errno syscall.Errno
			if errors.As(err, &errno) {
				out.Errno = errnoName(errno)
			}
		default:
			out.Outcome = "other"
			out.Detail = err.Error()
		}
	default:
		out.Outcome = "other"
		out.Detail = fmt.Sprintf("unknown helper mode %q", mode)
	}
	b, err := json.Marshal(out)
	if err != nil {
		fmt.Fprintf(w, `{"outcome":"other","detail":%q}`+"\n", err.Error())
		return
	}
	fmt.Fprintf(w, "%s\n", b)
}

func errnoName(e syscall.Errno) string {
	switch e {
	case syscall.EACCES:
		return "EACCES"
	case syscall.EPERM:
		return "EPERM"
	case syscall.ENOENT:
		return "ENOENT"
	case syscall.ECONNREFUSED:
		return "ECONNREFUSED"
	}
	return fmt.Sprintf("errno %d (%v)", int(e), e)
}
