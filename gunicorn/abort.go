package gunicorn

import (
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Abort begins Gunicorn's graceful stop of a master that failed its checks
// and may have served (a swap generation accepts on the held sockets as soon
// as its workers boot, a USR2 master serves alone before its check): TERM,
// so workers finish the request in hand. A worker forked an instant before
// the master's signal still runs the master's handler and loses it, so the
// workers are also signalled directly, now and a second later (unless done
// closes first). The caller then waits for the exit with a bound and KILLs;
// it calls the returned stop once it no longer needs the second nudge.
func Abort(signal func(syscall.Signal) error, workers func() []int, done <-chan struct{}) (stop func(), err error) {
	if err := signal(syscall.SIGTERM); err != nil {
		return func() {}, err
	}
	nudge := func() {
		for _, w := range workers() {
			_ = unix.Kill(w, unix.SIGTERM) // ESRCH: already gone
		}
	}
	nudge()
	quit := make(chan struct{})
	go func() {
		t := time.NewTimer(time.Second)
		defer t.Stop()
		select {
		case <-t.C:
			nudge()
		case <-quit:
		case <-done:
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { close(quit) }) }, nil
}
