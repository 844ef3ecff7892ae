package supctl

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// TestHelpAndVersionWithoutSupervisor: --help prints the usage on stdout and
// succeeds; version and --version print supctl's version and succeed when
// no supervisor answers.
func TestHelpAndVersionWithoutSupervisor(t *testing.T) {
	t.Setenv("SUPCTL_SOCKET", filepath.Join(t.TempDir(), "absent.sock"))
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"--help"}, "usage: supctl"},
		{[]string{"-h"}, "usage: supctl"},
		{[]string{"help"}, "usage: supctl"},
		{[]string{"--version"}, "supctl " + ownVersion() + "\n"},
		{[]string{"version"}, "supctl " + ownVersion() + "\n"},
	} {
		var out, errb bytes.Buffer
		if err := Run(tc.args, &out, &errb); err != nil {
			t.Errorf("%v: %v (stderr %s)", tc.args, err, errb.String())
		}
		if !strings.HasPrefix(out.String(), tc.out) {
			t.Errorf("%v: stdout %q, want it to start with %q", tc.args, out.String(), tc.out)
		}
	}
}

// TestVersionWithSupervisor: version adds the answering supervisor's version.
func TestVersionWithSupervisor(t *testing.T) {
	sock := serveFake(t)
	var out, errb bytes.Buffer
	if err := Run([]string{"-s", sock, "version"}, &out, &errb); err != nil {
		t.Fatalf("version: %v (stderr %s)", err, errb.String())
	}
	if !strings.Contains(out.String(), "supervisor ") || !strings.Contains(out.String(), sock) {
		t.Errorf("version output %q names no supervisor on %s", out.String(), sock)
	}
}
