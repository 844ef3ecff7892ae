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

// TestIdleConnectionsClosed: more idle keep-alive connections than the
// limit are each served in turn, closed by the server after the idle
// timeout, and a new status request is served afterwards.
func TestIdleConnectionsClosed(t *testing.T) {
	const maxConns, clients = 4, 12
	const idle = 200 * time.Millisecond
	_, path := serveLimited(t, &backend{}, Limits{MaxConns: maxConns, IdleTimeout: idle})
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
	// Twelve clients through four slots: at least three rounds of idling.
	if min := time.Duration(clients/maxConns-1) * idle; last < min {
		t.Errorf("all %d connections done in %v: the limit of %d connections did not hold (want >= %v)", clients, last, maxConns, min)
	}
	t.Logf("%d keep-alive clients through %d slots with idle timeout %v: all closed after %v", clients, maxConns, idle, last.Round(time.Millisecond))
	if _, err := NewClient(path).Status(context.Background(), ""); err != nil {
		t.Errorf("status after the idle connections: %v", err)
	}
}

// TestConnectionLimitWaits: with every slot held by an open connection a
// further one is not served, and is served as soon as a slot frees.
func TestConnectionLimitWaits(t *testing.T) {
	const maxConns = 3
	_, path := serveLimited(t, &backend{}, Limits{MaxConns: maxConns, IdleTimeout: time.Minute})
	var held []net.Conn
	defer func() {
		for _, c := range held {
			_ = c.Close() // test cleanup
		}
	}()
	for range maxConns {
		c, _, err := rawStatus(path)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
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
		t.Fatalf("a connection beyond the limit of %d was served while all were held (err %v)", maxConns, err)
	case <-time.After(300 * time.Millisecond):
	}
	if err := held[0].Close(); err != nil {
		t.Fatal(err)
	}
	held = held[1:]
	select {
	case err := <-answered:
		if err != nil {
			t.Errorf("waiting connection after a slot freed: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting connection was not served within 10 s of a slot freeing")
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
