package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/daemon"
)

// TestHelpAndVersion: help and version requests succeed and read no
// configuration (the default one does not exist here).
func TestHelpAndVersion(t *testing.T) {
	for _, tc := range []struct {
		args []string
		out  string
	}{
		{[]string{"--help"}, "usage:"},
		{[]string{"-h"}, "usage:"},
		{[]string{"help"}, "usage:"},
		{[]string{"check", "--help"}, "usage:"},
		{[]string{"--version"}, "supervisor " + daemon.Version},
		{[]string{"version"}, "supervisor " + daemon.Version},
	} {
		var out, errb bytes.Buffer
		if err := daemon.Run(tc.args, &out, &errb); err != nil {
			t.Errorf("%v: %v (stderr %s)", tc.args, err, errb.String())
		}
		if !strings.HasPrefix(out.String(), tc.out) {
			t.Errorf("%v: stdout %q, want it to start with %q", tc.args, out.String(), tc.out)
		}
	}
}
