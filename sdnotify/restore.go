package sdnotify

import "time"

// Restore rebuilds a Notifier from what Socket and WatchdogInterval reported
// in a previous image of the same process (an in-place re-exec, after the
// environment variables were removed). socket "" gives a nil Notifier.
func Restore(socket string, watchdog time.Duration) *Notifier {
	if socket == "" {
		return nil
	}
	return &Notifier{socket: socket, watchdog: watchdog, watchdogOK: watchdog > 0}
}
