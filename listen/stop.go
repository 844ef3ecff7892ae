package listen

import (
	"errors"
	"time"

	"golang.org/x/sys/unix"
)

// SignalStop sends a graceful stop (send) to a Gunicorn master that holds
// socks, one master at a time per socket. A master unlinks the name its Unix
// socket was bound at (the hidden one, see Socket.hold) as the first step of
// its graceful stop, and one that finds the name gone fails (exit 1,
// FileNotFoundError) before stopping its workers; two masters stopping at
// once (a stop during a reload) would race on that one name. SignalStop
// holds each socket's turn, re-creates the hidden name, calls send, waits
// until the master has removed the name, exited (exited closed) or wait has
// passed, re-creates the name for the next master, and releases the turns.
// Sockets without a hidden name take no turn. It returns send's error, or
// the error of re-creating a name.
func SignalStop(socks []*Socket, send func() error, exited <-chan struct{}, wait time.Duration) error {
	var held []*Socket
	for _, s := range socks {
		if _, hold := s.Held(); hold != "" {
			held = append(held, s)
		}
	}
	if len(held) == 0 {
		return send()
	}
	for _, s := range held {
		s.turn.Lock()
		defer s.turn.Unlock()
	}
	var errs []error
	for _, s := range held {
		errs = append(errs, s.Relink())
	}
	if err := send(); err != nil {
		return errors.Join(append(errs, err)...)
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !allUnlinked(held) {
		select {
		case <-exited:
		case <-deadline.C:
		case <-tick.C:
			continue
		}
		break
	}
	for _, s := range held {
		errs = append(errs, s.Relink())
	}
	return errors.Join(errs...)
}

// allUnlinked reports whether no socket's hidden name names it any more.
func allUnlinked(socks []*Socket) bool {
	for _, s := range socks {
		ino, hold := s.Held()
		var st unix.Stat_t
		if unix.Lstat(hold, &st) == nil && st.Ino == ino {
			return false
		}
	}
	return true
}
