package core

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// spewApp waits for @DIR@/go, writes 20 MB of lines to stdout, creates
// @DIR@/spewed, then prints "marker N" each time @DIR@/mark appears
// (removing it). Had a stalled sink blocked its writes, spewed would never
// appear.
const spewApp = `
[app.spew]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "while [ ! -e @DIR@/go ]; do sleep 0.05; done; yes 'spew 0123456789 abcdefghijklmnopqrstuvwxyz 0123456789 abcdefghijklmnopqrstuvwxyz' | head -c 20000000; touch @DIR@/spewed; n=0; while :; do if [ -e @DIR@/mark ]; then n=$((n+1)); rm -f @DIR@/mark; echo marker $n; fi; sleep 0.05; done"]
`

// stallAndResume calls stall, lets the app write its 20 MB and waits until
// it did, checks that lines were counted as dropped, calls resume, and
// waits until a line the app writes afterwards reaches the sink (sinkText
// returns what the sink holds).
func stallAndResume(t *testing.T, s *e2e.Supervisor, stall, resume func(), sinkText func() string) {
	t.Helper()
	s.WaitState("spew", control.StateRunning, 30*time.Second)
	stall()
	if err := os.WriteFile(filepath.Join(s.Dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	spewed := filepath.Join(s.Dir, "spewed")
	testenv.WaitFor(t, 60*time.Second, "the app's 20 MB written while its sink is stalled", func() bool {
		_, err := os.Stat(spewed)
		return err == nil
	})
	app := s.App("spew")
	if app.LogDropped == 0 {
		t.Fatalf("no line counted as dropped while the sink was stalled: %+v", app)
	}
	t.Logf("20 MB written with the sink stalled; %d lines dropped", app.LogDropped)
	resume()
	mark := filepath.Join(s.Dir, "mark")
	// The app takes the request file once it sees it; a lost marker line
	// (the sink still full) is asked for again.
	testenv.WaitFor(t, 30*time.Second, "a marker line in the sink after it recovered", func() bool {
		if strings.Contains(sinkText(), "stdout: marker ") {
			return true
		}
		if _, err := os.Stat(mark); os.IsNotExist(err) {
			if err := os.WriteFile(mark, nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return false
	})
	if !strings.Contains(sinkText(), "lines dropped: the log sink did not take them") {
		t.Errorf("no drop notice in the sink after it recovered")
	}
}

// TestLogStalledStdout: with the supervisor's stdout a pipe whose reader is
// stopped, an app logging to stdout writes 20 MB without blocking, the
// lines that cannot be written are counted, and once the reader reads
// again a line the app writes reaches it.
func TestLogStalledStdout(t *testing.T) {
	var got string
	var reader *exec.Cmd
	s := e2e.Start(t, e2e.Options{
		Config: logsHeader + spewApp,
		Setup: func(dir string) {
			fifo := filepath.Join(dir, "stdout.fifo")
			got = filepath.Join(dir, "stdout.log")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			out, err := os.Create(got)
			if err != nil {
				t.Fatal(err)
			}
			reader = exec.Command("cat", fifo)
			reader.Stdout = out
			if err := reader.Start(); err != nil {
				t.Fatal(err)
			}
			_ = out.Close() // cat holds its own copy
			t.Cleanup(func() {
				_ = reader.Process.Kill() // cat reads until killed
				_ = reader.Wait()         // ended by the kill
			})
		},
		// The supervisor's stdout is stdout.fifo next to its config ($2).
		Wrap: []string{"/bin/sh", "-c", `exec "$0" "$@" >"${2%/*}/stdout.fifo"`},
	})
	t.Cleanup(func() { _ = reader.Process.Signal(syscall.SIGCONT) }) // runs before the supervisor stops
	signal := func(sig syscall.Signal) func() {
		return func() {
			if err := reader.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
		}
	}
	stallAndResume(t, s, signal(syscall.SIGSTOP), signal(syscall.SIGCONT), func() string {
		b, _ := os.ReadFile(got) // created in Setup; a failed read shows as no marker
		return string(b)
	})
}

// TestLogFullDisk: with log = "file" on a 64 KiB tmpfs that the app's
// output fills, the app writes 20 MB without blocking, the lines that
// cannot be written are counted, and once the tmpfs has room again a line
// the app writes reaches the file.
func TestLogFullDisk(t *testing.T) {
	var logs string
	s := e2e.Start(t, e2e.Options{
		Config: logsHeader + spewApp + `log = "file"
log_file = "@DIR@/logs/spew.log"
`,
		Setup: func(dir string) {
			logs = filepath.Join(dir, "logs")
			testenv.Tmpfs(t, logs, "64k")
		},
	})
	stallAndResume(t, s, func() {}, func() {
		if out, err := exec.Command("mount", "-o", "remount,size=1m", logs).CombinedOutput(); err != nil {
			t.Fatalf("give the tmpfs room: %v: %s", err, out)
		}
	}, func() string {
		b, _ := os.ReadFile(filepath.Join(logs, "spew.log")) // a failed read shows as no marker
		return string(b)
	})
}
