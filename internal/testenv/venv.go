package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// SystemPython is the interpreter every virtualenv is made from: Debian's,
// whose dist-packages hold gunicorn 20.1.0 and flask.
const SystemPython = "/usr/bin/python3"

// venvState is the once-per-test-binary virtualenv. Its zero value means
// "not built yet"; the mutex makes concurrent first callers (parallel tests)
// wait for one build instead of racing to make several.
type venvState struct {
	mu sync.Mutex
	// done is true once a build was attempted; skip, err or dir then tells
	// how it went. A failed build is not retried: every caller gets the same
	// answer instead of paying for another try.
	done bool
	// skip, when not empty, says which prerequisite is missing.
	skip string
	err  error
	// tmp is the os.MkdirTemp directory that holds the virtualenv.
	tmp string
	dir string
}

// shared is the package's virtualenv, built lazily by Venv and removed by
// Cleanup.
var shared venvState

// Venv returns the absolute path of a virtualenv made with
// `/usr/bin/python3 -m venv --system-site-packages --without-pip`, which
// imports Debian's gunicorn and flask, and whose bin/gunicorn is the entry
// script pip would write (#!<venv>/bin/python). The first call builds it; later
// calls in the same test binary return the same path, so tests must not modify
// it. Remove it with Cleanup from TestMain.
//
// --without-pip keeps the build under 0.1 s instead of about 4 s (ensurepip);
// nothing the supervisor does involves pip.
//
// When /usr/bin/python3, gunicorn or flask is missing, Venv skips the test,
// unless the environment has CI=true, where a missing prerequisite is a
// failure. Any other build error fails the test.
func Venv(t testing.TB) string {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.done {
		shared.done = true
		shared.skip = checkPrerequisites()
		if shared.skip == "" {
			shared.tmp, shared.dir, shared.err = buildVenv()
		}
	}
	if shared.skip != "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: %s (CI=true, so this is a failure, not a skip)", shared.skip)
		}
		t.Skipf("testenv: %s", shared.skip)
	}
	if shared.err != nil {
		t.Fatalf("testenv: %v", shared.err)
	}
	return shared.dir
}

// Cleanup removes the virtualenv built by Venv, if any, and forgets it, so a
// later Venv builds a new one. Call it from TestMain after m.Run. A removal
// error is reported on standard error, since TestMain has no testing.TB.
func Cleanup() {
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if shared.tmp != "" {
		if err := os.RemoveAll(shared.tmp); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: removing virtualenv: %v\n", err)
		}
	}
	shared.done, shared.skip, shared.err, shared.tmp, shared.dir = false, "", nil, "", ""
}

// checkPrerequisites returns "" when the system interpreter exists and
// imports gunicorn and flask, and otherwise a sentence naming what is missing.
func checkPrerequisites() string {
	if _, err := os.Stat(SystemPython); err != nil {
		return fmt.Sprintf("%s is missing (apt-get install python3 python3-venv gunicorn python3-flask): %v", SystemPython, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, SystemPython, "-c", "import gunicorn, flask").CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s cannot import gunicorn and flask (apt-get install gunicorn python3-flask): %v: %s",
			SystemPython, err, strings.TrimSpace(string(out)))
	}
	return ""
}

// buildVenv makes a new virtualenv under a fresh temporary directory and
// returns that directory (for removal) and the virtualenv's path. On error the
// temporary directory is already removed.
func buildVenv() (tmp, dir string, err error) {
	tmp, err = os.MkdirTemp("", "testenv-venv-")
	if err != nil {
		return "", "", fmt.Errorf("making virtualenv directory: %w", err)
	}
	dir = filepath.Join(tmp, "venv")
	if err := makeVenv(dir); err != nil {
		if rmErr := os.RemoveAll(tmp); rmErr != nil {
			err = errors.Join(err, fmt.Errorf("removing %s: %w", tmp, rmErr))
		}
		return "", "", err
	}
	return tmp, dir, nil
}

// makeVenv creates the virtualenv dir, writes its bin/gunicorn and checks
// that its interpreter imports gunicorn and flask.
func makeVenv(dir string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, SystemPython, "-m", "venv", "--system-site-packages", "--without-pip", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s -m venv --system-site-packages --without-pip %s: %w: %s",
			SystemPython, dir, err, strings.TrimSpace(string(out)))
	}
	if err := WriteGunicornScript(dir); err != nil {
		return err
	}
	python := filepath.Join(dir, "bin", "python")
	if out, err := exec.CommandContext(ctx, python, "-c", "import gunicorn, flask").CombinedOutput(); err != nil {
		return fmt.Errorf("%s cannot import gunicorn and flask: %w: %s", python, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// GunicornScript returns the text of the bin/gunicorn entry script pip would
// write into the virtualenv venv (an absolute path): the script runs Gunicorn
// with the virtualenv's interpreter, so Gunicorn's USR2 re-exec of sys.argv
// starts the same script again.
func GunicornScript(venv string) string {
	return "#!" + filepath.Join(venv, "bin", "python") + "\n" +
		"import sys\n" +
		"from gunicorn.app.wsgiapp import run\n" +
		"sys.exit(run())\n"
}

// WriteGunicornScript writes GunicornScript(venv) to venv/bin/gunicorn with
// mode 0755, replacing any file there.
func WriteGunicornScript(venv string) error {
	if !filepath.IsAbs(venv) {
		return fmt.Errorf("virtualenv path %q is not absolute: a #! line needs an absolute interpreter", venv)
	}
	path := filepath.Join(venv, "bin", "gunicorn")
	if err := os.WriteFile(path, []byte(GunicornScript(venv)), 0o755); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// WriteFile applies the mode only when it creates the file (and through
	// the umask): set it explicitly.
	if err := os.Chmod(path, 0o755); err != nil {
		return fmt.Errorf("making %s executable: %w", path, err)
	}
	return nil
}
