package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Variant is how a release's app behaves.
type Variant int

const (
	// OK serves GET / with "version=<Version>\n", GET /healthz with "ok" and
	// GET /pid with "pid=<worker pid> ppid=<its parent's pid>\n", all 200.
	OK Variant = iota
	// ImportError raises RuntimeError when app.py is imported, so every worker
	// fails to boot (Gunicorn 20.1.0's master then exits 3).
	ImportError
	// Health500 is OK except that GET /healthz answers 500.
	Health500
	// HangAtBoot sleeps for an hour while app.py is imported: workers exist
	// but never answer.
	HangAtBoot
	// Slow is OK except that GET /?ms=N sleeps N milliseconds before it
	// answers (for drain tests).
	Slow
	// All500 imports fine and answers every route, /healthz included, with
	// status 500 (a release that must never receive clients' traffic).
	All500
)

func (v Variant) String() string {
	switch v {
	case OK:
		return "OK"
	case ImportError:
		return "ImportError"
	case Health500:
		return "Health500"
	case HangAtBoot:
		return "HangAtBoot"
	case Slow:
		return "Slow"
	case All500:
		return "All500"
	}
	return "Variant(" + strconv.Itoa(int(v)) + ")"
}

// Release is one version of the test app.
type Release struct {
	// Version is returned by GET / and names the release directory; it must
	// match [A-Za-z0-9._+-]+.
	Version string
	Variant Variant
	// BootDelay is how long importing app.py takes (each worker sleeps
	// that long first): a release that boots slowly.
	BootDelay time.Duration
}

var versionRE = regexp.MustCompile(`^[A-Za-z0-9._+-]+$`)

// AppModule is the WSGI application (Gunicorn's APP_MODULE) of every release
// written by WriteRelease.
const AppModule = "app:app"

// WriteRelease writes app.py, a Flask app module exposing app (AppModule),
// into the existing directory dir, behaving as r.Variant says. It fails the
// test when r.Version is not a plain version string or the file cannot be
// written.
func WriteRelease(t testing.TB, dir string, r Release) {
	t.Helper()
	src, err := releaseSource(r)
	if err != nil {
		t.Fatalf("testenv: release for %s: %v", dir, err)
	}
	path := filepath.Join(dir, "app.py")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatalf("testenv: writing release: %v", err)
	}
}

// releaseSource returns the Python source of r's app.py.
func releaseSource(r Release) (string, error) {
	if !versionRE.MatchString(r.Version) {
		return "", fmt.Errorf("version %q does not match %s", r.Version, versionRE)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# Test release %s, variant %s, written by internal/testenv.\n", r.Version, r.Variant)
	b.WriteString("import os\nimport time\n\nfrom flask import Flask, request\n\n")
	if r.BootDelay > 0 {
		fmt.Fprintf(&b, "time.sleep(%.3f)  # testenv BootDelay\n\n", r.BootDelay.Seconds())
	}
	fmt.Fprintf(&b, "VERSION = %q\n\n", r.Version)
	switch r.Variant {
	case OK, Health500, Slow:
	case All500:
		b.WriteString("app = Flask(__name__)\n\n\n")
		b.WriteString("@app.route(\"/\", defaults={\"path\": \"\"})\n@app.route(\"/<path:path>\")\n")
		b.WriteString("def fail(path):\n    return \"release %s fails (testenv All500)\\n\" % VERSION, 500\n")
		return b.String(), nil
	case ImportError:
		b.WriteString("raise RuntimeError(\"release \" + VERSION + \" fails at import (testenv ImportError)\")\n\n")
	case HangAtBoot:
		b.WriteString("time.sleep(3600)  # testenv HangAtBoot: never finishes booting\n\n")
	default:
		return "", fmt.Errorf("unknown variant %d", int(r.Variant))
	}
	b.WriteString("app = Flask(__name__)\n\n\n")

	b.WriteString("@app.route(\"/\")\ndef index():\n")
	if r.Variant == Slow {
		b.WriteString("    ms = int(request.args.get(\"ms\", \"0\"))\n    time.sleep(ms / 1000.0)\n")
	}
	b.WriteString("    return \"version=%s\\n\" % VERSION\n\n\n")

	b.WriteString("@app.route(\"/healthz\")\ndef healthz():\n")
	if r.Variant == Health500 {
		b.WriteString("    return \"unhealthy\", 500\n\n\n")
	} else {
		b.WriteString("    return \"ok\"\n\n\n")
	}

	b.WriteString("@app.route(\"/pid\")\ndef pid():\n")
	b.WriteString("    return \"pid=%d ppid=%d\\n\" % (os.getpid(), os.getppid())\n")
	return b.String(), nil
}

// ParsePID parses the body of a release's GET /pid: the worker's pid and its
// parent's (the Gunicorn master that forked it).
func ParsePID(body string) (pid, ppid int, err error) {
	if _, err := fmt.Sscanf(body, "pid=%d ppid=%d", &pid, &ppid); err != nil {
		return 0, 0, fmt.Errorf("parsing /pid body %q: %w", body, err)
	}
	return pid, ppid, nil
}

// MakeReleaseTree lays out a deployment the way Capistrano-style tools do:
// root/releases/<i>-<version>/app.py for each release (i counts from 0), and
// root/current, a symlink to the first release's directory (absolute path).
// It returns the symlink's path and the release directories in order. root
// must exist; at least one release is required.
func MakeReleaseTree(t testing.TB, root string, releases ...Release) (current string, dirs []string) {
	t.Helper()
	if len(releases) == 0 {
		t.Fatalf("testenv: MakeReleaseTree(%s) needs at least one release", root)
	}
	for i, r := range releases {
		dir := filepath.Join(root, "releases", strconv.Itoa(i)+"-"+r.Version)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatalf("testenv: making release directory: %v", err)
		}
		WriteRelease(t, dir, r)
		dirs = append(dirs, dir)
	}
	current = filepath.Join(root, "current")
	PointCurrent(t, current, dirs[0])
	return current, dirs
}

// PointCurrent makes the symlink current point at dir, atomically (a new
// symlink renamed over the old), as a deploy tool switches releases.
func PointCurrent(t testing.TB, current, dir string) {
	t.Helper()
	tmp := current + ".new"
	if err := os.Remove(tmp); err != nil && !os.IsNotExist(err) {
		t.Fatalf("testenv: removing stale %s: %v", tmp, err)
	}
	if err := os.Symlink(dir, tmp); err != nil {
		t.Fatalf("testenv: pointing %s at %s: %v", current, dir, err)
	}
	if err := os.Rename(tmp, current); err != nil {
		t.Fatalf("testenv: pointing %s at %s: %v", current, dir, err)
	}
}
