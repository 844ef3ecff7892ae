package control

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"
)

// logsBackend serves scripted lines: recent ones at once, live ones as the
// test sends them.
type logsBackend struct {
	backend
	live    chan LogLine
	stopped chan struct{}
	asked   atomic.Value // the last LogQuery
	reopens atomic.Int32
}

func (b *logsBackend) OpenLogs(app string, q LogQuery) ([]LogLine, <-chan LogLine, func(), error) {
	if err := b.check(app); err != nil {
		return nil, nil, nil, err
	}
	b.asked.Store(q)
	recent := []LogLine{{Gen: 1, Stream: "stdout", Text: "one"}, {Gen: 1, Stream: "stderr", Text: "two", Part: 1, More: true}}
	if !q.Follow {
		return recent, nil, func() {}, nil
	}
	var once atomic.Bool
	return recent, b.live, func() {
		if once.CompareAndSwap(false, true) {
			close(b.stopped)
		}
	}, nil
}

func (b *logsBackend) ReopenLog(_ context.Context, app string) error {
	if err := b.check(app); err != nil {
		return err
	}
	b.reopens.Add(1)
	return nil
}

// TestLogs: the recent lines come back in order with the query passed
// through; an unknown app and a bad n are errors with their codes.
func TestLogs(t *testing.T) {
	b := &logsBackend{}
	_, path := serve(t, b)
	c := NewClient(path)
	ctx := context.Background()
	var got []LogLine
	if err := c.Logs(ctx, "web", LogQuery{N: 7, Stderr: true}, func(l LogLine) { got = append(got, l) }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Text != "one" || got[1].Part != 1 || !got[1].More {
		t.Errorf("lines %+v, want one and the first piece of two", got)
	}
	if q := b.asked.Load().(LogQuery); q != (LogQuery{N: 7, Stderr: true}) {
		t.Errorf("backend asked %+v, want n 7 stderr", q)
	}
	var ae *APIError
	if err := c.Logs(ctx, "nope", LogQuery{}, func(LogLine) {}); !errors.As(err, &ae) || ae.Code != CodeNotFound {
		t.Errorf("logs of an unknown app: %v, want not_found", err)
	}
	resp, err := c.do(ctx, "GET", "/v1/apps/web/logs?n=-1")
	if err == nil {
		resp.Body.Close()
	}
	if !errors.As(err, &ae) || ae.Code != CodeBadRequest {
		t.Errorf("n=-1: %v, want bad_request", err)
	}
}

// TestLogsFollow: a follow delivers the recent lines, then each live line
// as it is sent; the client's going away ends the follow on the server.
func TestLogsFollow(t *testing.T) {
	b := &logsBackend{live: make(chan LogLine), stopped: make(chan struct{})}
	_, path := serve(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lines := make(chan LogLine, 16)
	done := make(chan error, 1)
	go func() {
		done <- NewClient(path).Logs(ctx, "web", LogQuery{Follow: true}, func(l LogLine) { lines <- l })
	}()
	for i := 0; i < 2; i++ {
		recv(t, lines)
	}
	for i := 0; i < 3; i++ {
		want := fmt.Sprintf("live %d", i)
		select {
		case b.live <- LogLine{Gen: 2, Stream: "stdout", Text: want}:
		case <-time.After(10 * time.Second):
			t.Fatal("server does not take live lines")
		}
		if l := recv(t, lines); l.Text != want {
			t.Fatalf("got %q, want %q", l.Text, want)
		}
	}
	cancel()
	select {
	case <-b.stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("follow not stopped after the client went away")
	}
	if err := <-done; err != nil {
		t.Errorf("Logs after cancel: %v", err)
	}
}

func recv(t *testing.T, ch <-chan LogLine) LogLine {
	t.Helper()
	select {
	case l := <-ch:
		return l
	case <-time.After(10 * time.Second):
		t.Fatal("no line within 10 s")
		return LogLine{}
	}
}

// TestReopenLogs: reopen reaches the backend and answers ok; an unknown
// app is not_found; without a Logs backend the verb is unavailable.
func TestReopenLogs(t *testing.T) {
	b := &logsBackend{}
	_, path := serve(t, b)
	c := NewClient(path)
	if r, err := c.ReopenLogs(context.Background(), "web"); err != nil || !r.OK || b.reopens.Load() != 1 {
		t.Errorf("ReopenLogs = %+v, %v (reopens %d)", r, err, b.reopens.Load())
	}
	var ae *APIError
	if _, err := c.ReopenLogs(context.Background(), "nope"); !errors.As(err, &ae) || ae.Code != CodeNotFound {
		t.Errorf("reopen of an unknown app: %v, want not_found", err)
	}
	_, plain := serve(t, &backend{})
	if _, err := NewClient(plain).ReopenLogs(context.Background(), "web"); !errors.As(err, &ae) || ae.Code != CodeUnavailable {
		t.Errorf("reopen without a Logs backend: %v, want unavailable", err)
	}
}
