package gunicorn

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
)

// loggerScript builds the logger class the way Gunicorn does (install,
// then cfg.logger_class(cfg)), prints its base classes, and logs the
// requests of its arguments: "METHOD STATUS PATH [X-Request-Start]".
const loggerScript = `
import datetime, sys
from gunicorn.config import Config
import gunisup_access
cfg = Config()
for kv in sys.argv[1].split(",") if sys.argv[1] else []:
    k, v = kv.split("=", 1)
    cfg.set(k, v)
gunisup_access.Logger.install()
log = gunisup_access.Logger(cfg)
print(",".join(c.__module__ + "." + c.__name__ for c in type(log).__mro__[1:3]))
class Resp: pass
class Req: pass
for spec in sys.argv[2:]:
    parts = spec.split(" ")
    resp, req = Resp(), Req()
    resp.status = parts[1] + " X"
    req.method, req.path, req.headers = parts[0], parts[2], []
    if len(parts) > 3:
        req.headers.append(("X-REQUEST-START", parts[3]))
    log.access(resp, req, {}, datetime.timedelta(seconds=1, microseconds=250))
`

func TestAccessLogger(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, AccessModule+".py"), accessModule, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "mylog.py"), []byte("from gunicorn.glogging import Logger\nclass Mine(Logger):\n    pass\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, settings, userClass, base string
	}{
		{"default", "", "", "gunisup_access._Access,gunicorn.glogging.Logger"},
		{"statsd", "statsd_host=127.0.0.1:9", "", "gunisup_access._Access,gunicorn.instrument.statsd.Statsd"},
		{"user class", "statsd_host=127.0.0.1:9", "mylog.Mine", "gunisup_access._Access,mylog.Mine"},
	}
	stamp := time.Now().Add(-3 * time.Second).UnixMicro() // queued 2 s: 3 s ago, minus the 1 s request
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			app := &config.App{Name: "web", Routes: config.RouteMetrics{LoggerClass: tt.userClass}}
			env := AccessEnv([]string{"PATH=/usr/bin:/bin", "PYTHONPATH=" + dir}, "/nonexistent", app, 3)
			cmd := exec.Command("/usr/bin/python3", "-c", loggerScript, tt.settings,
				"GET 200 /a/1", "POST 503 /b\tc", "GET 404 /q "+strconv.FormatInt(stamp, 10))
			cmd.Env, cmd.ExtraFiles = env, []*os.File{w}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			w.Close()
			if err != nil {
				t.Fatalf("python: %v\n%s", err, stderr.String())
			}
			if got := strings.TrimSpace(string(out)); got != tt.base {
				t.Errorf("bases = %q, want %q", got, tt.base)
			}
			checkLines(t, bufio.NewScanner(r))
		})
	}
}

// checkLines checks the three lines loggerScript's requests gave.
func checkLines(t *testing.T, sc *bufio.Scanner) {
	t.Helper()
	var got []AccessLine
	for sc.Scan() {
		a, err := ParseAccess(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, a)
	}
	if len(got) != 3 {
		t.Fatalf("got %d lines, want 3: %+v", len(got), got)
	}
	want := []struct {
		method, path string
		status       int
	}{{"GET", "/a/1", 200}, {"POST", "/b?c", 503}, {"GET", "/q", 404}}
	for i, w := range want {
		a := got[i]
		if a.Method != w.method || a.Path != w.path || a.Status != w.status || a.Duration != time.Second+250*time.Microsecond ||
			a.Master != os.Getpid() {
			t.Errorf("line %d = %+v, want %v", i, a, w)
		}
	}
	if got[0].Queue != -1 {
		t.Errorf("queue without a header = %v, want -1", got[0].Queue)
	}
	if q := got[2].Queue; q < 1900*time.Millisecond || q > time.Minute {
		t.Errorf("queue = %v, want about 2s", q)
	}
}

func TestParseAccess(t *testing.T) {
	good := "1 42 41 GET 200 1500 -1 3 /api/items/7"
	a, err := ParseAccess([]byte(good))
	if err != nil {
		t.Fatal(err)
	}
	want := AccessLine{Worker: 42, Master: 41, Method: "GET", Path: "/api/items/7", Status: 200, Duration: 1500 * time.Microsecond, Queue: -1, Dropped: 3}
	if a != want {
		t.Errorf("ParseAccess(%q) = %+v, want %+v", good, a, want)
	}
	for _, bad := range []string{"", "1 42 41 GET 200 1500 -1 3", "2 42 41 GET 200 1500 -1 0 /", "1 x 41 GET 200 1 -1 0 /",
		"1 42 41 GET 20 1 -1 0 /", "1 42 41  200 1 -1 0 /", "1 42 41 GET 200 1 -2 0 /", "1 42 41 GET 200 99999999999999999999 -1 0 /",
		"1 42 GET 200 1500 -1 0 /"} {
		if _, err := ParseAccess([]byte(bad)); err == nil {
			t.Errorf("ParseAccess(%q): no error", bad)
		}
	}
}

func TestWithAccessLogger(t *testing.T) {
	got := WithAccessLogger([]string{"/venv/bin/gunicorn", "--logger-class", "mine.L", "app:app"})
	want := []string{"/venv/bin/gunicorn", "--logger-class", "mine.L", "--logger-class", AccessClass, "app:app"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("WithAccessLogger = %q, want %q", got, want)
	}
}

// floodScript logs N requests while nobody reads the pipe, prints "full",
// waits for a line on stdin (the pipe has been drained), then logs one more.
const floodScript = `
import datetime, sys
from gunicorn.config import Config
import gunisup_access
log = gunisup_access.Logger(Config())
class Resp: status = "200 OK"
class Req: method, path, headers = "GET", "/flood", []
for _ in range(int(sys.argv[1])):
    log.access(Resp(), Req(), {}, datetime.timedelta(microseconds=5))
print("full", flush=True)
sys.stdin.readline()
log.access(Resp(), Req(), {}, datetime.timedelta(microseconds=5))
`

// TestAccessLoggerNeverBlocks floods a pipe nobody reads: the worker goes
// on (drops lines rather than waiting), and the first line it writes once
// the pipe has room counts every line it dropped.
func TestAccessLoggerNeverBlocks(t *testing.T) {
	const n = 20000 // about 1 MiB of lines: several times a default pipe
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, AccessModule+".py"), accessModule, 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command("/usr/bin/python3", "-c", floodScript, strconv.Itoa(n))
	cmd.Env = AccessEnv([]string{"PATH=/usr/bin:/bin", "PYTHONPATH=" + dir}, "/nonexistent", &config.App{Name: "web"}, 3)
	cmd.ExtraFiles = []*os.File{w}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	out := bufio.NewReader(stdout)
	if l, err := out.ReadString('\n'); err != nil || l != "full\n" {
		t.Fatalf("python did not finish its flood: %q, %v", l, err)
	}
	// Drain what the pipe took, then let it write once more.
	lines, dropped := 0, 0
	if err := r.SetReadDeadline(time.Now().Add(500 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		lines++
	}
	if err := r.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	sc = bufio.NewScanner(r)
	for sc.Scan() {
		a, err := ParseAccess(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		lines++
		dropped += a.Dropped
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d requests logged into an unread pipe: %d lines read, %d counted as dropped", n+1, lines, dropped)
	if lines+dropped != n+1 || dropped == 0 {
		t.Errorf("lines %d + dropped %d = %d, want %d with some dropped", lines, dropped, lines+dropped, n+1)
	}
}
