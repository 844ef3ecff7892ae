package control

import (
	"net"
	"net/http"
	"sync"
	"time"
)

// newConnGrace is how long a connection may stay without a complete
// request before a newcomer may take its slot: a client that connects and
// writes at once (supctl) has been read by then, and a crowd of silent
// connections delays a newcomer by this much per MaxConns of them.
const newConnGrace = 250 * time.Millisecond

// limitListener serves at most max connections at once without letting
// idle ones lock a new client out. When every slot is taken, a new
// connection takes the slot of the one waiting longest for a request (a
// keep-alive connection between requests, or one that has not completed a
// request within newConnGrace), which is closed; it waits only while every
// connection is inside a request, and further ones then wait in the
// socket's backlog. The server reports each connection's state to track.
type limitListener struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]connEntry
	// changed gets a token (never blocking) when a connection changes state.
	changed   chan struct{}
	done      chan struct{}
	closeOnce sync.Once
}

// connEntry is one served connection's state and since when it holds.
type connEntry struct {
	state http.ConnState
	since time.Time
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: max, conns: map[net.Conn]connEntry{},
		changed: make(chan struct{}, 1), done: make(chan struct{})}
}

// Accept returns the next connection once it has a slot.
func (l *limitListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := l.admit(c); err != nil {
		_ = c.Close() // the listener is closing: the peer sees the connection end
		return nil, err
	}
	return c, nil
}

// admit gives c a slot, closing the longest-waiting idle connection when
// none is free, or waiting for one to free or turn idle. It returns
// net.ErrClosed when the listener closes first.
func (l *limitListener) admit(c net.Conn) error {
	for {
		l.mu.Lock()
		now := time.Now()
		if len(l.conns) < l.max {
			l.conns[c] = connEntry{state: http.StateNew, since: now}
			l.mu.Unlock()
			return nil
		}
		victim, wake := l.victim(now)
		if victim != nil {
			delete(l.conns, victim)
			l.conns[c] = connEntry{state: http.StateNew, since: now}
		}
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Close() // its server goroutine sees the close and ends
			return nil
		}
		if err := l.wait(wake); err != nil {
			return err
		}
	}
}

// victim returns the connection waiting longest for a request, or nil and
// how long until a new connection passes newConnGrace (0: none will).
// Called with mu held.
func (l *limitListener) victim(now time.Time) (net.Conn, time.Duration) {
	var oldest net.Conn
	var oldestSince time.Time
	var wake time.Duration
	for c, e := range l.conns {
		switch e.state {
		case http.StateIdle:
		case http.StateNew:
			if left := newConnGrace - now.Sub(e.since); left > 0 {
				if wake == 0 || left < wake {
					wake = left
				}
				continue
			}
		default:
			continue
		}
		if oldest == nil || e.since.Before(oldestSince) {
			oldest, oldestSince = c, e.since
		}
	}
	return oldest, wake
}

// wait returns when a connection changes state, after wake (when not 0),
// or with net.ErrClosed when the listener closes.
func (l *limitListener) wait(wake time.Duration) error {
	var timeout <-chan time.Time
	if wake > 0 {
		t := time.NewTimer(wake)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-l.changed:
	case <-timeout:
	case <-l.done:
		return net.ErrClosed
	}
	return nil
}

// track is the server's ConnState hook: it records each connection's
// state and frees the slot of a closed or hijacked one.
func (l *limitListener) track(c net.Conn, state http.ConnState) {
	l.mu.Lock()
	switch state {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
	default:
		if _, ok := l.conns[c]; ok {
			l.conns[c] = connEntry{state: state, since: time.Now()}
		}
	}
	l.mu.Unlock()
	select {
	case l.changed <- struct{}{}:
	default:
	}
}

// Close stops accepting and ends a wait for a slot.
func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}
