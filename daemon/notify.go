package daemon

import (
	"errors"
	"time"

	"github.com/gunisup/supervisor/sdnotify"
)

// sdPhase is where the supervisor stands in systemd's notify protocol.
type sdPhase int

const (
	// sdStarting: READY=1 not sent yet; some app is not ready.
	sdStarting sdPhase = iota
	// sdReady: READY=1 sent and no reload runs.
	sdReady
	// sdReloading: RELOADING=1 sent; READY=1 follows when no reload runs
	// (the pair Type=notify-reload requires; Type=notify accepts it).
	sdReloading
	// sdStopping: STOPPING=1 sent; nothing else is sent after it.
	sdStopping
)

func (p sdPhase) String() string {
	switch p {
	case sdStarting:
		return "starting"
	case sdReady:
		return "ready"
	case sdReloading:
		return "reloading"
	case sdStopping:
		return "stopping"
	}
	return "unknown"
}

// notifyState is what systemd has been told: the phase, the last STATUS=
// line and the watchdog. It is owned by the daemon's loop goroutine. With a
// nil notifier (not started by systemd) it keeps its phase and sends
// nothing.
type notifyState struct {
	notifier *sdnotify.Notifier
	phase    sdPhase
	// status is the last STATUS= line sent.
	status string
}

// apps moves to the phase the apps' condition calls for and sends it with
// status, the one-line summary of the apps:
//
//	starting  -> ready      when allReady:      READY=1 + STATUS
//	ready     -> reloading  when reloading:     RELOADING=1, then STATUS
//	reloading -> ready      when not reloading: READY=1 + STATUS
//	any other case:                             STATUS
//
// Nothing is sent once stopping. first is true on the move from starting
// to ready; the error joins the failed sends.
func (s *notifyState) apps(allReady, reloading bool, status string) (first bool, err error) {
	switch {
	case s.phase == sdStopping:
		return false, nil
	case s.phase == sdStarting && allReady:
		s.phase = sdReady
		return true, s.ready(status)
	case s.phase == sdReloading && !reloading:
		s.phase = sdReady
		return false, s.ready(status)
	case s.phase == sdReady && reloading:
		s.phase = sdReloading
		err = s.notifier.Reloading()
	}
	s.status = status
	return false, errors.Join(err, s.notifier.Status(status))
}

func (s *notifyState) ready(status string) error {
	s.status = status
	return s.notifier.Ready(status)
}

// stopping moves to stopping and sends STOPPING=1.
func (s *notifyState) stopping() error {
	s.phase = sdStopping
	return s.notifier.Stopping()
}

// watchdogTicker returns a channel that ticks at the interval systemd asked
// pings at, and the function that stops it; the channel is nil (never
// ready) when systemd set no watchdog.
func (s *notifyState) watchdogTicker() (<-chan time.Time, func()) {
	iv, ok := s.notifier.WatchdogInterval()
	if !ok {
		return nil, func() {}
	}
	t := time.NewTicker(iv)
	return t.C, t.Stop
}

// ping sends WATCHDOG=1, except once stopping: the stop is bounded by
// shutdown_timeout, and systemd's own stop timeout covers it.
func (s *notifyState) ping() error {
	if s.phase == sdStopping {
		return nil
	}
	return s.notifier.Watchdog()
}
