package testenv

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Tool returns the path of an external program a test runs: name is looked
// up in PATH, or, when it holds a slash, taken as the path itself. When it is
// missing the test is skipped, or fails when CI=true (CI installs every
// tool; .ci/run lists them), with the Debian package that provides it.
func Tool(tb testing.TB, name, debianPackage string) string {
	tb.Helper()
	var path string
	var err error
	if strings.Contains(name, "/") {
		path, err = name, statExecutable(name)
	} else {
		path, err = exec.LookPath(name)
	}
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		tb.Fatalf("testenv: %s is required in CI: %v (apt-get install %s)", name, err, debianPackage)
	}
	tb.Skipf("testenv: %s not installed: %v (apt-get install %s)", name, err, debianPackage)
	return ""
}

// Promtool returns Debian's promtool (/usr/bin/promtool, not another one
// found in PATH), as Tool does.
func Promtool(tb testing.TB) string {
	tb.Helper()
	return Tool(tb, "/usr/bin/promtool", "prometheus")
}

func statExecutable(path string) error {
	_, err := os.Stat(path)
	return err
}
