package control

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// rawStatus opens a connection to the control socket at path, sends one
// keep-alive status request on it and reads the answer. The connection
// stays open.
func rawStatus(path string) (net.Conn, *bufio.Reader, error) {
	c, err := net.Dial("unix", path)
	if err != nil {
		return nil, nil, err
	}
	if err := c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, nil, errors.Join(err, c.Close())
	}
	if _, err := io.WriteString(c, "GET /v1/status HTTP/1.1\r\nHost: supervisor\r\n\r\n"); err != nil {
		return nil, nil, errors.Join(err, c.Close())
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, nil, errors.Join(err, c.Close())
	}
	_, err = io.Copy(io.Discard, resp.Body)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = errors.New(resp.Status)
	}
	if err != nil {
		return nil, nil, errors.Join(err, c.Close())
	}
	return c, br, nil
}

// TestIdleConnectionsClosed: keep-alive connections left idle are closed
// by the server after the idle timeout, and a status request is served
// afterwards.
func TestIdleConnectionsClosed(t *testing.T) {
	const clients = 4
	const idle = 200 * time.Millisecond
	_, path := serveLimited(t, &backend{}, Limits{MaxConns: clients, IdleTimeout: idle})
	type result struct {
		served, closed time.Duration
		err            error
	}
	results := make(chan result, clients)
	start := time.Now()
	for range clients {
		go func() {
			c, br, err := rawStatus(path)
			if err != nil {
				results <- result{err: err}
				return
			}
			defer c.Close()
			r := result{served: time.Since(start)}
			// The server must close the idle connection: EOF well before
			// the 30 s deadline rawStatus set.
			if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
				r.err = errors.New("idle connection not closed by the server: read gave " + errString(err))
			}
			r.closed = time.Since(start)
			results <- r
		}()
	}
	var last time.Duration
	for range clients {
		r := <-results
		if r.err != nil {
			t.Errorf("client: %v", r.err)
			continue
		}
		if held := r.closed - r.served; held < idle/2 {
			t.Errorf("connection closed %v after its answer, before the idle timeout %v", held, idle)
		}
		last = max(last, r.closed)
	}
	t.Logf("%d keep-alive clients with idle timeout %v: all closed after %v", clients, idle, last.Round(time.Millisecond))
	if _, err := NewClient(path).Status(context.Background(), ""); err != nil {
		t.Errorf("status after the idle connections: %v", err)
	}
}

// TestIdleConnectionsDoNotStarve: with the default limits (64 connections,
// 60 s of idleness), 200 keep-alive connections left idle after a request,
// or 200 connections that never send one, do not keep a status request
// waiting: it takes the slot of the longest idle one. At most the limit
// stays open.
func TestIdleConnectionsDoNotStarve(t *testing.T) {
	const conns = 200
	for _, tc := range []struct {
		name string
		open func(path string) (net.Conn, error)
	}{
		{"keepalive", func(path string) (net.Conn, error) {
			c, _, err := rawStatus(path)
			return c, err
		}},
		{"silent", func(path string) (net.Conn, error) { return net.Dial("unix", path) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, path := serveLimited(t, &backend{}, Limits{})
			held := make([]net.Conn, 0, conns)
			defer func() {
				for _, c := range held {
					_ = c.Close() // test cleanup
				}
			}()
			start := time.Now()
			for i := range conns {
				c, err := tc.open(path)
				if err != nil {
					t.Fatalf("connection %d of %d: %v", i+1, conns, err)
				}
				held = append(held, c)
			}
			opened := time.Since(start)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start = time.Now()
			if _, err := NewClient(path).Status(ctx, ""); err != nil {
				t.Fatalf("status with %d %s connections open: %v", conns, tc.name, err)
			}
			t.Logf("%d %s connections opened in %v; status answered in %v", conns, tc.name,
				opened.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestConnectionLimitWaits: with every slot held by a connection inside a
// request (a reload waiting at its gate) a further one is not served, and
// is served as soon as those requests end.
func TestConnectionLimitWaits(t *testing.T) {
	const maxConns = 3
	b := &gatedBackend{gate: make(chan struct{})}
	_, path := serveLimited(t, b, Limits{MaxConns: maxConns, IdleTimeout: time.Minute})
	c := NewClient(path)
	started := make(chan struct{}, maxConns)
	reloads := make(chan error, maxConns)
	for range maxConns {
		go func() {
			_, err := c.Reload(context.Background(), "web", "", "", func(e Event) {
				if e.Phase == "started" {
					started <- struct{}{}
				}
			})
			reloads <- err
		}()
	}
	for range maxConns {
		<-started
	}
	answered := make(chan error, 1)
	go func() {
		c, _, err := rawStatus(path)
		if err == nil {
			_ = c.Close() // served: all the test wanted
		}
		answered <- err
	}()
	select {
	case err := <-answered:
		t.Fatalf("a connection beyond the limit of %d was served while all were inside a request (err %v)", maxConns, err)
	case <-time.After(300 * time.Millisecond):
	}
	close(b.gate)
	for range maxConns {
		if err := <-reloads; err != nil {
			t.Errorf("held reload: %v", err)
		}
	}
	select {
	case err := <-answered:
		if err != nil {
			t.Errorf("waiting connection after the requests ended: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting connection was not served within 10 s of the requests ending")
	}
}

// gatedBackend's verbs take their time: Reload reports a phase, then
// waits for gate before it finishes; StopApp waits for stopTakes.
type gatedBackend struct {
	backend
	gate      chan struct{}
	stopTakes time.Duration
}

func (b *gatedBackend) Reload(ctx context.Context, n, s string, p Progress) Outcome {
	p("started")
	select {
	case <-b.gate:
	case <-ctx.Done():
		return Outcome{Result: "failed", Err: ctx.Err()}
	}
	p("switched")
	return Outcome{Result: "ok"}
}

func (b *gatedBackend) StopApp(ctx context.Context, n string) error {
	t := time.NewTimer(b.stopTakes)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestLongVerbsOutlastTimeouts: a reload whose events come further apart
// than the write timeout still streams to its end, and a stop that takes
// longer than the read timeout is answered (its context is not cancelled).
func TestLongVerbsOutlastTimeouts(t *testing.T) {
	const timeout = 100 * time.Millisecond
	b := &gatedBackend{gate: make(chan struct{}), stopTakes: 4 * timeout}
	_, path := serveLimited(t, b, Limits{ReadTimeout: timeout, WriteTimeout: timeout, ReadHeaderTimeout: timeout})
	c := NewClient(path)
	var phases []string
	ev, err := c.Reload(context.Background(), "web", "", "", func(e Event) {
		phases = append(phases, e.Phase)
		if e.Phase == "started" {
			time.AfterFunc(4*timeout, func() { close(b.gate) })
		}
	})
	if err != nil || !ev.OK || len(phases) != 2 {
		t.Errorf("reload with events %v apart under a %v write timeout: %+v %v, phases %q", 4*timeout, timeout, ev, err, phases)
	}
	if r, err := c.Act(context.Background(), "stop", "web"); err != nil || !r.OK {
		t.Errorf("stop taking %v under a %v read timeout: %+v %v", b.stopTakes, timeout, r, err)
	}
}

func errString(err error) string {
	if err == nil {
		return "data"
	}
	return err.Error()
}
