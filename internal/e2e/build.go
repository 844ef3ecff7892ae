package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/gunisup/supervisor/internal/testenv"
)

// builds holds what this test binary built: one directory, and in it one
// file per (package, version), built on first use (with -race when the tests
// run with it) and removed by Cleanup.
var builds struct {
	mu    sync.Mutex
	dir   string
	paths map[string]string
}

// Binaries builds cmd/supervisor and cmd/supctl once per test binary and
// returns their paths.
func Binaries(t testing.TB) (supervisor, supctl string) {
	t.Helper()
	return SupervisorVersion(t, ""), buildOnce(t, "supctl", "./cmd/supctl", "")
}

// SupervisorVersion returns cmd/supervisor built with daemon.Version set to
// version ("" keeps the default), building it once per test binary and
// version: the self-upgrade tests install one version over another.
func SupervisorVersion(t testing.TB, version string) string {
	t.Helper()
	return buildOnce(t, "supervisor", "./cmd/supervisor", version)
}

// buildOnce builds the main package pkg (a path from the module root) as
// the file name, with daemon.Version set to version unless it is "", once
// per test binary.
func buildOnce(t testing.TB, name, pkg, version string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	key := name
	if version != "" {
		key += "-" + version
	}
	if p, ok := builds.paths[key]; ok {
		return p
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "e2e-bin-")
		if err != nil {
			t.Fatalf("e2e: build directory: %v", err)
		}
		builds.dir, builds.paths = dir, map[string]string{}
	}
	out := filepath.Join(builds.dir, key)
	if err := goBuild(out, pkg, version); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	builds.paths[key] = out
	return out
}

// goBuild builds pkg of this module into out, with -race when the tests run
// with it and daemon.Version set to version when it is not "".
func goBuild(out, pkg, version string) error {
	root, err := moduleRoot()
	if err != nil {
		return err
	}
	args := []string{"build", "-o", out}
	if RaceEnabled {
		args = append(args, "-race")
	}
	if version != "" {
		args = append(args, "-ldflags", "-X github.com/gunisup/supervisor/daemon.Version="+version)
	}
	cmd := exec.Command("go", append(args, pkg)...)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %v: %w\n%s", cmd.Args[1:], err, b)
	}
	return nil
}

func moduleRoot() (string, error) {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the module root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..")), nil
}

// Cleanup removes the built binaries and the shared virtualenv. Call it from
// TestMain once the tests have run.
func Cleanup() {
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if builds.dir != "" {
		if err := os.RemoveAll(builds.dir); err != nil {
			fmt.Fprintln(os.Stderr, "e2e cleanup:", err)
		}
		builds.dir, builds.paths = "", nil
	}
	testenv.Cleanup()
}
