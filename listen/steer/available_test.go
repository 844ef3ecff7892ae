package steer

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// unprivilegedEnv marks the re-executed test binary that drops root first.
const unprivilegedEnv = "STEER_TEST_AS_NOBODY"

// nobody is the uid the re-executed test binary switches to.
const nobody = 65534

// TestAvailableExplainsFailure runs Available without privileges (as
// nobody, in a re-executed test binary when the test runs as root) and
// requires an error naming the missing capabilities.
func TestAvailableExplainsFailure(t *testing.T) {
	if os.Getenv(unprivilegedEnv) == "1" {
		// syscall.Setuid applies to every thread of the process and drops all
		// capabilities when leaving uid 0.
		if err := syscall.Setuid(nobody); err != nil {
			t.Fatalf("setuid(%d): %v", nobody, err)
		}
		checkUnavailable(t)
		return
	}
	if os.Geteuid() != 0 {
		checkUnavailable(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAvailableExplainsFailure$", "-test.v=true", "-test.count=1")
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1")
	out, err := cmd.CombinedOutput()
	t.Logf("as uid %d:\n%s", nobody, out)
	if err != nil {
		t.Fatalf("unprivileged run: %v", err)
	}
}

// checkUnavailable requires Available to fail with an explanation.
func checkUnavailable(t *testing.T) {
	err := Available()
	if err == nil {
		t.Skipf("uid %d can load BPF programs here; nothing to explain", os.Geteuid())
	}
	t.Logf("Available() = %v", err)
	if !strings.Contains(err.Error(), "CAP_BPF") {
		t.Fatalf("Available() = %q, want the missing capability named", err)
	}
}
