package contrib_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dockerDir holds the example image.
const dockerDir = "docker"

// TestDockerfile parses contrib/docker/Dockerfile (no Docker daemon needed)
// and checks it against the code: a Debian base; the supervisor as the
// ENTRYPOINT in exec form (PID 1) reading the configuration the image
// copies; a HEALTHCHECK on that configuration's /healthz; a STOPSIGNAL the
// supervisor treats as a graceful stop; and the notes on `docker stop -t`
// (above shutdown_timeout) and on the capabilities steering needs.
func TestDockerfile(t *testing.T) {
	path := filepath.Join(dockerDir, "Dockerfile")
	ins, comments := parseDockerfile(t, path)
	last := map[string]instruction{}
	var copies []instruction
	for _, in := range ins {
		last[in.Keyword] = in
		if in.Keyword == "COPY" {
			copies = append(copies, in)
		}
	}
	for _, kw := range []string{"FROM", "ENTRYPOINT", "HEALTHCHECK", "STOPSIGNAL"} {
		if _, ok := last[kw]; !ok {
			t.Fatalf("%s: no %s", path, kw)
		}
	}
	if base := strings.Fields(last["FROM"].Args)[0]; !strings.HasPrefix(base, "debian:") {
		t.Errorf("%s:%d: final base image %s, want debian:", path, last["FROM"].Line, base)
	}
	if tini := regexp.MustCompile(`\b(tini|dumb-init)\b`); tini.MatchString(last["ENTRYPOINT"].Args) {
		t.Errorf("%s: ENTRYPOINT %s: the supervisor is PID 1 itself", path, last["ENTRYPOINT"].Args)
	}
	argv := execForm(t, path, last["ENTRYPOINT"], last["ENTRYPOINT"].Args)
	if filepath.Base(argv[0]) != "supervisor" {
		t.Errorf("%s: ENTRYPOINT runs %s, want the supervisor", path, argv[0])
	}
	i := slices.Index(argv, "-c")
	if i < 0 || i+1 >= len(argv) {
		t.Fatalf("%s: ENTRYPOINT %v names no configuration (-c)", path, argv)
	}
	checkCopySources(t, path, copies)
	confInImage := argv[i+1]
	src := copiedFrom(t, path, copies, confInImage)
	raw, err := os.ReadFile(filepath.Join("..", src))
	if err != nil {
		t.Fatal(err)
	}
	cfg := parseContainerConfig(t, src, string(raw))
	port := httpPort(t, src, cfg, false)
	checkHealthcheck(t, path, last["HEALTHCHECK"], port)

	sig := strings.TrimSpace(last["STOPSIGNAL"].Args)
	if !strings.HasPrefix(sig, "SIG") {
		sig = "SIG" + sig
	}
	if stops := gracefulStops(t); !slices.Contains(stops, sig) {
		t.Errorf("%s: STOPSIGNAL %s, want one of %v (daemon.isStop: a graceful stop)", path, sig, stops)
	}

	stop := regexp.MustCompile(`docker stop -t (\d+)`).FindStringSubmatch(comments)
	if stop == nil {
		t.Errorf("%s: no note on `docker stop -t N`", path)
	} else if n, _ := strconv.Atoi(stop[1]); time.Duration(n)*time.Second <= shutdownTimeout(t, src, cfg) {
		t.Errorf("%s: notes docker stop -t %d, not above shutdown_timeout %v", path, n, cfg.Supervisor.ShutdownTimeout)
	}
	if !strings.Contains(comments, "--cap-add BPF") {
		t.Errorf("%s: no note on --cap-add BPF (steering)", path)
	}
}

// copiedFrom returns the repository path the Dockerfile copies to dest
// (COPY SRC DEST), failing the test when none does.
func copiedFrom(t *testing.T, path string, copies []instruction, dest string) string {
	t.Helper()
	for _, in := range copies {
		f := strings.Fields(in.Args)
		if len(f) == 2 && f[1] == dest {
			return f[0]
		}
	}
	t.Fatalf("%s: no COPY SRC %s: the ENTRYPOINT's configuration is not the shipped one", path, dest)
	return ""
}

// checkCopySources fails the test for each source of a COPY from the
// build context (the repository's root) that does not exist.
func checkCopySources(t *testing.T, path string, copies []instruction) {
	t.Helper()
	for _, in := range copies {
		f := strings.Fields(in.Args)
		if len(f) < 2 || strings.HasPrefix(f[0], "--from=") {
			continue
		}
		for _, src := range f[:len(f)-1] {
			if _, err := os.Stat(filepath.Join("..", src)); err != nil {
				t.Errorf("%s:%d: COPY %s: %v", path, in.Line, src, err)
			}
		}
	}
}

// checkHealthcheck checks that HEALTHCHECK runs, in exec form, a command
// fetching /healthz from the supervisor's HTTP port on loopback.
func checkHealthcheck(t *testing.T, path string, in instruction, port int) {
	t.Helper()
	_, cmd, ok := strings.Cut(in.Args, "CMD ")
	if !ok {
		t.Fatalf("%s:%d: HEALTHCHECK %s: want CMD", path, in.Line, in.Args)
	}
	argv := execForm(t, path, in, strings.TrimSpace(cmd))
	want := fmt.Sprintf("http://127.0.0.1:%d/healthz", port)
	if !slices.Contains(argv, want) {
		t.Errorf("%s:%d: HEALTHCHECK %v does not fetch %s", path, in.Line, argv, want)
	}
	checkServed(t, path+" HEALTHCHECK", "/healthz")
}
