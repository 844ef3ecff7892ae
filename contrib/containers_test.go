package contrib_test

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/gunisup/supervisor/config"
)

// Files of the code the container files are checked against.
const (
	// metricsHTTP serves /healthz and /readyz ("GET /healthz" patterns).
	metricsHTTP = "../metrics/http.go"
	// daemonSignals says which signals stop the supervisor gracefully.
	daemonSignals = "../daemon/signals.go"
)

// appRoot is where the container configuration keeps the app; the tests
// move it under a temporary directory so that config.Parse finds it.
const appRoot = "/srv/web/"

// parseContainerConfig validates the configuration text of a container
// (named by name in errors) with the supervisor's own parser, its app's
// virtualenv (python and a gunicorn script that does nothing) and directory
// laid out under a temporary directory.
func parseContainerConfig(t *testing.T, name, text string) *config.Config {
	t.Helper()
	root := t.TempDir()
	// The configuration's user must reach the virtualenv: commands are
	// checked as the app's user (t.TempDir's parent is 0700).
	if err := os.Chmod(filepath.Dir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"srv/web/venv/bin", "srv/web/current"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink("/usr/bin/python3", filepath.Join(root, "srv/web/venv/bin/python")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "srv/web/venv/bin/gunicorn"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text, appRoot) {
		t.Fatalf("%s: no path under %s", name, appRoot)
	}
	text = strings.ReplaceAll(text, appRoot, filepath.Join(root, appRoot)+"/")
	cfg, err := config.Parse(name, []byte(text))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return cfg
}

// checkServed fails the test unless the supervisor's HTTP endpoint serves
// path (metrics/http.go registers "GET path").
func checkServed(t *testing.T, what, path string) {
	t.Helper()
	src, err := os.ReadFile(metricsHTTP)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(src), strconv.Quote("GET "+path)) {
		t.Errorf("%s: path %s is not served by the supervisor (%s registers no GET %s)", what, path, metricsHTTP, path)
	}
}

// httpPort returns the port of [supervisor] http, failing the test when
// the endpoint is off or listens on loopback only (probes come from
// outside the container's network namespace).
func httpPort(t *testing.T, name string, cfg *config.Config, loopbackOK bool) int {
	t.Helper()
	host, port, err := net.SplitHostPort(cfg.Supervisor.HTTP)
	if err != nil {
		t.Fatalf("%s: [supervisor] http %q: %v", name, cfg.Supervisor.HTTP, err)
	}
	if ip := net.ParseIP(host); !loopbackOK && ip != nil && ip.IsLoopback() {
		t.Errorf("%s: [supervisor] http %q listens on loopback only: the orchestrator's probes cannot reach it", name, cfg.Supervisor.HTTP)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n == 0 {
		t.Fatalf("%s: [supervisor] http %q: want a fixed port", name, cfg.Supervisor.HTTP)
	}
	return n
}

// shutdownTimeout is the configuration's shutdown_timeout, failing the test
// when it is below the product default (the files promise at least that).
func shutdownTimeout(t *testing.T, name string, cfg *config.Config) time.Duration {
	t.Helper()
	d := cfg.Supervisor.ShutdownTimeout
	if d < config.DefaultShutdownTimeout {
		t.Errorf("%s: shutdown_timeout %v, below the default %v", name, d, config.DefaultShutdownTimeout)
	}
	return d
}

// instruction is one Dockerfile instruction: its keyword (upper case) and
// the rest of its line, continuation lines joined.
type instruction struct {
	Line     int
	Keyword  string
	Args     string
	Comments string
}

// parseDockerfile splits a Dockerfile into instructions. Comments are
// collected as a whole (the notes they carry are checked too).
func parseDockerfile(t *testing.T, path string) (ins []instruction, comments string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cur *instruction
	for i, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			comments += trimmed + "\n"
			continue
		}
		if cur == nil {
			if trimmed == "" {
				continue
			}
			kw, rest, _ := strings.Cut(trimmed, " ")
			ins = append(ins, instruction{Line: i + 1, Keyword: strings.ToUpper(kw)})
			cur = &ins[len(ins)-1]
			trimmed = rest
		}
		body, more := strings.CutSuffix(trimmed, "\\")
		cur.Args = strings.TrimSpace(cur.Args + " " + strings.TrimSpace(body))
		if !more {
			cur = nil
		}
	}
	if cur != nil {
		t.Fatalf("%s: the last instruction ends with a continuation", path)
	}
	return ins, comments
}

// execForm decodes an instruction's JSON array (exec form), failing the
// test on shell form.
func execForm(t *testing.T, path string, in instruction, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("%s:%d: %s %s: want exec form (a JSON array): %v", path, in.Line, in.Keyword, args, err)
	}
	return argv
}

// gracefulStops returns the signal names (SIGTERM...) that daemon's isStop
// accepts as a graceful stop.
func gracefulStops(t *testing.T) []string {
	t.Helper()
	src, err := os.ReadFile(daemonSignals)
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "func isStop(")
	if !ok {
		t.Fatalf("%s: no func isStop", daemonSignals)
	}
	body, _, _ = strings.Cut(body, "\n}")
	var names []string
	for _, m := range regexp.MustCompile(`syscall\.(SIG[A-Z0-9]+)`).FindAllStringSubmatch(body, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("%s: isStop names no signal", daemonSignals)
	}
	return names
}

// decodeYAMLDocs decodes every document of a multi-document YAML file
// into values made by next.
func decodeYAMLDocs[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []T
	for {
		var d T
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(docs)+1, err)
		}
		docs = append(docs, d)
	}
}
