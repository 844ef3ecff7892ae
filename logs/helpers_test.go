package logs

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// memSink is an in-memory sink.
type memSink struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (m *memSink) Write(p []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.Write(p)
}

func (m *memSink) String() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.b.String()
}

// waitFor polls cond until it holds, failing the test after 20 s.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitDone waits for ch with a limit.
func waitDone(t testing.TB, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// pipe returns a capture pipe, closing both ends at the end of the test.
func pipe(t testing.TB) (r, w *os.File) {
	t.Helper()
	r, w, err := Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(); _ = r.Close() }) // ends already closed by the test report ErrClosed
	return r, w
}

// writeAsync writes data to w in a goroutine and closes the returned
// channel when every byte was written.
func writeAsync(t testing.TB, w io.Writer, data []byte) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := w.Write(data); err != nil {
			t.Errorf("write to pipe: %v", err)
		}
	}()
	return done
}

// finish closes w, waits for the capture to reach EOF and closes the app's
// log (draining its queue into the sink).
func finish(t testing.TB, a *App, c *Capture, w *os.File) {
	t.Helper()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "capture EOF", c.Done())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
}

// sinkLines returns the sink's lines of the given stream ("stdout: " etc.),
// their text after the prefix.
func sinkLines(out, stream string) []string {
	var got []string
	for _, l := range strings.Split(out, "\n") {
		if i := strings.Index(l, " "+stream+": "); i >= 0 {
			got = append(got, l[i+len(stream)+3:])
		}
	}
	return got
}
