package gunicorn

import "testing"

// TestParseWorkerLine: the lines Gunicorn 20.1 and later masters write about
// a worker's end are recognised with their signal; other lines are not.
func TestParseWorkerLine(t *testing.T) {
	for _, c := range []struct {
		line string
		want WorkerEvent
		ok   bool
	}{
		{"[2026-12-07 02:00:00 +0000] [41] [CRITICAL] WORKER TIMEOUT (pid:57)", WorkerEvent{Timeout: true}, true},
		{"[2026-12-07 02:00:00 +0000] [41] [WARNING] Worker with pid 57 was terminated due to signal 9", WorkerEvent{Signal: "SIGKILL"}, true},
		{"Worker with pid 57 was terminated due to signal 15", WorkerEvent{Signal: "SIGTERM"}, true},
		{"[2026-12-07 02:00:00 +0000] [41] [ERROR] Worker (pid:57) was sent SIGKILL! Perhaps out of memory?", WorkerEvent{Signal: "SIGKILL"}, true},
		{"Worker (pid:57) was sent SIGSEGV!", WorkerEvent{Signal: "SIGSEGV"}, true},
		{"Worker (pid:57) was sent code 134!", WorkerEvent{}, false},
		{"Worker with pid 57 was terminated due to signal x", WorkerEvent{}, false},
		{"[INFO] Booting worker with pid: 57", WorkerEvent{}, false},
	} {
		got, ok := ParseWorkerLine(c.line)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseWorkerLine(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}
