package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

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
	if err := buildShared(out, key, pkg, version); err != nil {
		t.Fatalf("e2e: %v", err)
	}
	builds.paths[key] = out
	return out
}

// sharedLockWait bounds how long buildShared waits for another test
// binary's build of the same checkout.
const sharedLockWait = 5 * time.Minute

// sharedDir returns the directory, made if needed, where buildShared keeps
// the binaries of this module checkout between test binaries and runs: a
// directory per checkout (named after a hash of its root) under the user's
// cache directory (the system's temporary directory without one).
func sharedDir() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	base, err := os.UserCacheDir()
	if err != nil {
		base = os.TempDir()
	}
	sum := sha256.Sum256([]byte(root))
	dir := filepath.Join(base, "gunisup-e2e", hex.EncodeToString(sum[:8]))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("making shared build directory for %s: %w", root, err)
	}
	return dir, nil
}

// buildShared builds pkg (see goBuild) into the shared directory under key
// and copies the result to out. go build links a target again only when it
// is out of date, so every e2e package after the first, in the same run or
// a later one, copies the binaries instead of linking them (several
// seconds each on a busy machine). The test binaries of a checkout take
// turns through an exclusive flock(2) on the directory's lock file, waited
// for up to sharedLockWait. The copy is the test binary's own: a later
// build in the shared directory cannot change a binary a test runs.
func buildShared(out, key, pkg, version string) error {
	dir, err := sharedDir()
	if err != nil {
		return err
	}
	lockPath := filepath.Join(dir, "lock")
	lock, err := os.OpenFile(lockPath, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return fmt.Errorf("opening build lock: %w", err)
	}
	defer lock.Close() // closing releases the lock
	var lockErr error
	if !testenv.Poll(sharedLockWait, func() bool {
		lockErr = syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		return lockErr == nil
	}) {
		return fmt.Errorf("locking %s for %v: %w", lockPath, sharedLockWait, lockErr)
	}
	shared := filepath.Join(dir, key)
	if RaceEnabled {
		shared += "-race"
	}
	if err := goBuild(shared, pkg, version); err != nil {
		return err
	}
	return copyExecutable(shared, out)
}

// copyExecutable copies the file src to dst (created, mode 0755).
func copyExecutable(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("copying built binary: %w", err)
	}
	defer in.Close()
	outFile, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return fmt.Errorf("copying built binary: %w", err)
	}
	if _, err := io.Copy(outFile, in); err != nil {
		_ = outFile.Close() // the copy error is the one to report
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	if err := outFile.Close(); err != nil {
		return fmt.Errorf("copying %s to %s: %w", src, dst, err)
	}
	return nil
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
