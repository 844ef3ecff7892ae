package daemon

import (
	"os"
	"syscall"
	"time"
)

// repeatWindow is how close a repeated signal must follow the one acted on
// to count as the same one: `make` forwarding a Ctrl-C and `kill -TERM
// -PGID` deliver two stop signals milliseconds apart, and the second must
// not turn a graceful stop into a kill.
const repeatWindow = time.Second

// signalGate decides which received signals the daemon acts on. A stop
// signal (TERM, INT and QUIT are one kind) that repeats one acted on less
// than window before is dropped; a signal after the window counts again.
// Every other signal always passes: a second HUP asks for the file as it is
// now, which the first update may not have read. The zero window means
// repeatWindow. Only the daemon's loop uses it.
type signalGate struct {
	window time.Duration
	last   map[os.Signal]time.Time
}

// pass reports whether sig, received at now, is to be acted on, and
// records it if so.
func (g *signalGate) pass(sig os.Signal, now time.Time) bool {
	if g.last == nil {
		g.last = make(map[os.Signal]time.Time)
	}
	window := g.window
	if window == 0 {
		window = repeatWindow
	}
	if !isStop(sig) {
		return true
	}
	kind := os.Signal(syscall.SIGTERM)
	if at, seen := g.last[kind]; seen && now.Sub(at) < window {
		return false
	}
	g.last[kind] = now
	return true
}

// isStop reports whether sig asks the supervisor to stop.
func isStop(sig os.Signal) bool {
	return sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT
}
