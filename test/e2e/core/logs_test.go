package core

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

var logsHeader = e2e.Config{}.String()

// TestLogsFollow: `supctl logs -f` prints the recent lines, then lines the
// app writes while it runs, in order, each with its timestamp, generation
// and stream; --stderr keeps the stderr lines only.
func TestLogsFollow(t *testing.T) {
	s := e2e.Start(t, e2e.Options{Config: logsHeader + `
[app.ticker]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; echo tock $i >&2; sleep 0.05; done"]
`})
	s.WaitState("ticker", control.StateRunning, 30*time.Second)
	var start int
	testenv.WaitFor(t, 30*time.Second, "a first tick in supctl logs", func() bool {
		out, code := s.SupctlRun("logs", "ticker", "-n", "1")
		n := lastNumber(out, "tick")
		start = n
		return code == 0 && n > 0
	})

	cmd := exec.Command(s.Supctl, "-s", s.Socket, "logs", "ticker", "-f", "-n", "2")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // it follows until told to stop
		_ = cmd.Wait()                          // ended by the signal
	}()
	lines := make(chan string, 64)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	format := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ticker\[1\] (stdout|stderr): (tick|tock) \d+$`)
	last := 0
	deadline := time.After(30 * time.Second)
	for last < start+10 {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("supctl logs -f ended after tick %d (started at %d)", last, start)
			}
			if !format.MatchString(l) {
				t.Fatalf("line %q does not match %s", l, format)
			}
			if n := lastNumber(l, "tick"); n > 0 {
				if last != 0 && n != last+1 {
					t.Fatalf("tick %d followed tick %d", n, last)
				}
				last = n
			}
		case <-deadline:
			t.Fatalf("no live tick beyond %d within 30 s (started at %d)", last, start)
		}
	}

	out, code := s.SupctlRun("logs", "ticker", "--stderr", "-n", "5")
	if code != 0 || strings.Contains(out, "stdout:") || strings.Count(out, " stderr: tock ") != 5 {
		t.Errorf("supctl logs --stderr -n 5 (exit %d):\n%s\nwant 5 stderr lines", code, out)
	}
	if out, code := s.SupctlRun("logs", "nope"); code != 1 || !strings.Contains(out, "no such app") {
		t.Errorf("logs of an unknown app: exit %d: %s", code, out)
	}
}

// lastNumber returns N of the last "WORD N" in out, or 0.
func lastNumber(out, word string) int {
	m := regexp.MustCompile(word+` (\d+)\b`).FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		return 0
	}
	n, _ := strconv.Atoi(m[len(m)-1][1]) // the pattern matched digits
	return n
}

// TestStatusTraceback: a release that raises at import crash-loops; `supctl
// status APP` shows the Python traceback, and the supervisor logs the
// unexpected exit at WARN with its status and the traceback's exception
// line.
func TestStatusTraceback(t *testing.T) {
	s := e2e.Start(t, e2e.Options{Config: logsHeader + `
[app.broken]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 1
listen = ["tcp://127.0.0.1:0"]
backoff_initial = "100ms"
backoff_max = "1s"
`, Setup: func(dir string) {
		app := filepath.Join(dir, "app")
		if err := os.MkdirAll(app, 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.WriteRelease(t, app, testenv.Release{Version: "7", Variant: testenv.ImportError})
	}})
	const raised = "RuntimeError: release 7 fails at import"
	var out string
	testenv.WaitFor(t, 60*time.Second, "the traceback in supctl status", func() bool {
		out, _ = s.SupctlRun("status", "broken")
		return strings.Contains(out, raised)
	})
	t.Logf("supctl status broken:\n%s", out)
	if !strings.Contains(out, "broken: last stderr lines of the generation that exited:\n  | Traceback (most recent call last):\n") {
		t.Errorf("status lacks the traceback from its first line:\n%s", out)
	}
	testenv.WaitFor(t, 30*time.Second, "the unexpected exit logged at WARN", func() bool {
		for _, l := range strings.Split(s.Output(), "\n") {
			if strings.Contains(l, "level=WARN") && strings.Contains(l, `msg="exited unexpectedly"`) && strings.Contains(l, "app=broken") &&
				strings.Contains(l, `status="exit 3"`) && strings.Contains(l, `exception="`+raised) {
				return true
			}
		}
		return false
	})
}

// TestLogsLongLine: a 5 MiB line is delivered as marked pieces, and the
// ordinary lines after it arrive.
func TestLogsLongLine(t *testing.T) {
	s := e2e.Start(t, e2e.Options{Config: logsHeader + `
[app.big]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "head -c 5242880 /dev/zero | tr '\\0' x; echo; echo after 1; echo after 2; exec sleep 3600"]
`})
	var out string
	testenv.WaitFor(t, 60*time.Second, "the lines after the long one", func() bool {
		out, _ = s.SupctlRun("logs", "big", "-n", "3")
		return strings.Contains(out, "after 2")
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "big[1] stdout (split 80, end): xxxx") || !strings.HasSuffix(lines[1], "big[1] stdout: after 1") {
		t.Errorf("last 3 lines, want the last piece of the long line (split 80, end), then after 1 and 2:\n%.300s", out)
	}
	// The stdout sink drops what its bounded queue cannot hold while the
	// reader of the supervisor's stdout lags (and says so): the pieces all
	// reach it, or a notice of the gap does.
	testenv.WaitFor(t, 30*time.Second, "the pieces, or a drop notice, on the supervisor's stdout", func() bool {
		o := s.Output()
		return strings.Contains(o, "big[1] stdout (split 1): xxx") &&
			(strings.Contains(o, "big[1] stdout (split 80, end): xxx") || strings.Contains(o, "lines dropped"))
	})
}

// TestLogFileRotation: with log = "file" and log_max_size = 1 (MiB), 40,000
// numbered lines end up in the current file and the rotated ones, none lost
// or repeated, and the rotated files kept are log_max_files.
func TestLogFileRotation(t *testing.T) {
	const total = 40000
	s := e2e.Start(t, e2e.Options{Config: logsHeader + `
[app.writer]
allow_root = true
kind = "process"
restart = "never"
command = ["/usr/bin/awk", "BEGIN { for (i = 1; i <= 40000; i++) { printf \"line %d padding-padding-padding-padding-padding\\n\", i; if (i % 500 == 0) { fflush(); system(\"sleep 0.01\") } } }"]
log = "file"
log_file = "@DIR@/logs/writer.log"
log_max_size = 1
log_max_files = 10
`})
	dir := filepath.Join(s.Dir, "logs")
	var files []string
	testenv.WaitFor(t, 60*time.Second, "line 40000 in the log file", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "writer.log"))
		return err == nil && strings.Contains(string(b), "line "+strconv.Itoa(total)+" ")
	})
	rotated, err := filepath.Glob(filepath.Join(dir, "writer-*.log"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(rotated) // named by time: oldest first
	files = append(rotated, filepath.Join(dir, "writer.log"))
	if len(rotated) < 2 {
		t.Errorf("rotated files %v, want at least 2 for ~3.4 MB at 1 MiB", rotated)
	}
	next := 1
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l == "" {
				continue
			}
			if !strings.Contains(l, " writer[1] stdout: line ") {
				t.Fatalf("%s: unexpected line %q", filepath.Base(f), l)
			}
			if n := lastNumber(l, "line"); n != next {
				t.Fatalf("%s: line %d where %d was due", filepath.Base(f), n, next)
			}
			next++
		}
	}
	if next != total+1 {
		t.Errorf("read lines 1..%d, want 1..%d", next-1, total)
	}
	t.Logf("%d lines in %d rotated files and the current one", total, len(rotated))
}

// TestLogReopen: after an external logrotate moved the log file, `supctl
// logs APP --reopen`, or SIGUSR1 to the supervisor, makes it write to a new
// file at the path; lines before the move stay in the moved file.
func TestLogReopen(t *testing.T) {
	t.Run("supctl", func(t *testing.T) {
		logReopen(t, func(s *e2e.Supervisor) {
			if out, code := s.SupctlRun("logs", "ticker", "--reopen"); code != 0 || !strings.Contains(out, "reopen logs ticker: ok") {
				t.Fatalf("supctl logs --reopen: exit %d: %s", code, out)
			}
		})
	})
	t.Run("SIGUSR1", func(t *testing.T) {
		logReopen(t, func(s *e2e.Supervisor) {
			if err := s.Cmd.Process.Signal(syscall.SIGUSR1); err != nil {
				t.Fatal(err)
			}
		})
	})
}

// logReopen runs TestLogReopen with reopen as the operator's reopen step.
func logReopen(t *testing.T, reopen func(*e2e.Supervisor)) {
	s := e2e.Start(t, e2e.Options{Config: logsHeader + `
[app.ticker]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done"]
log = "file"
log_file = "@DIR@/ticker.log"
`})
	path := filepath.Join(s.Dir, "ticker.log")
	moved := path + ".1"
	testenv.WaitFor(t, 30*time.Second, "ticks in the log file", func() bool {
		b, err := os.ReadFile(path)
		return err == nil && lastNumber(string(b), "tick") > 0
	})
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	reopen(s)
	var after string
	testenv.WaitFor(t, 30*time.Second, "ticks in a new file at "+path, func() bool {
		b, err := os.ReadFile(path)
		after = string(b)
		return err == nil && lastNumber(after, "tick") > 0
	})
	before, err := os.ReadFile(moved)
	if err != nil {
		t.Fatal(err)
	}
	last, first := lastNumber(string(before), "tick"), regexp.MustCompile(`tick (\d+)`).FindStringSubmatch(after)
	if first == nil || first[1] != strconv.Itoa(last+1) {
		t.Errorf("moved file ends at tick %d, new file starts with %v: want the next tick, nothing lost", last, first)
	}
}
