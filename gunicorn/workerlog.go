package gunicorn

import (
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// WorkerEvent is what one line of a Gunicorn master's error log says about
// a worker's end.
type WorkerEvent struct {
	// Timeout: the master found the worker silent beyond its timeout
	// ("WORKER TIMEOUT (pid:N)") and aborts it.
	Timeout bool
	// Signal names the signal that killed a worker ("SIGKILL"), "" when
	// the line does not report one.
	Signal string
}

// ParseWorkerLine recognises the master's lines about a worker's end, with
// or without the error log's "[time] [pid] [LEVEL] " prefix:
//
//	WORKER TIMEOUT (pid:N)                               every version
//	Worker with pid N was terminated due to signal S     20.x (S a number)
//	Worker (pid:N) was sent SIGNAME!                     21 and later
//
// ok is false for any other line.
func ParseWorkerLine(line string) (ev WorkerEvent, ok bool) {
	if strings.Contains(line, "WORKER TIMEOUT (pid:") {
		return WorkerEvent{Timeout: true}, true
	}
	if _, rest, found := strings.Cut(line, "Worker with pid "); found {
		_, num, found := strings.Cut(rest, " was terminated due to signal ")
		if !found {
			return WorkerEvent{}, false
		}
		n, err := strconv.Atoi(strings.TrimSpace(num))
		if err != nil || n <= 0 || n > 64 {
			return WorkerEvent{}, false
		}
		return WorkerEvent{Signal: signalName(n)}, true
	}
	if _, rest, found := strings.Cut(line, "Worker (pid:"); found {
		_, sig, found := strings.Cut(rest, ") was sent SIG")
		if !found {
			return WorkerEvent{}, false
		}
		name, _, _ := strings.Cut(sig, "!")
		if name == "" || len(name) > 8 || strings.ToUpper(name) != name {
			return WorkerEvent{}, false
		}
		return WorkerEvent{Signal: "SIG" + name}, true
	}
	return WorkerEvent{}, false
}

// signalName returns the name of signal n ("SIGKILL"), or "SIG" and its
// number for one without a name (a real-time signal).
func signalName(n int) string {
	if s := unix.SignalName(unix.Signal(n)); s != "" {
		return s
	}
	return "SIG" + strconv.Itoa(n)
}
