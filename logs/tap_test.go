package logs

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestTapDropsWhenBehind: a tap that is not read takes lines up to its
// byte bound and counts the rest as dropped, without holding the capture
// back; lines of other streams are not offered; a drained tap takes lines
// again; closing the log ends the tap once its lines are taken.
func TestTapDropsWhenBehind(t *testing.T) {
	a := NewApp("web", Options{MaxLine: 100})
	line := Line{Gen: 1, Stream: Stderr, Text: strings.Repeat("e", 100)}
	tap := a.Tap(Query{Stream: Stderr}, 3*line.cost())
	var batch []Line
	for range 10 {
		batch = append(batch, line, Line{Gen: 1, Stream: Stdout, Text: "out"})
	}
	a.publish(batch)
	if got := tap.Dropped(); got != 7 {
		t.Errorf("dropped %d stderr lines, want 7 (10 offered, room for 3)", got)
	}
	<-tap.Ready()
	got, done := tap.Take(nil)
	if len(got) != 3 || done {
		t.Errorf("took %d lines (done %v), want 3 of an open tap", len(got), done)
	}
	a.publish([]Line{line})
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-tap.Ready()
	got, done = tap.Take(got[:0])
	if len(got) != 1 || !done || got[0].Stream != Stderr {
		t.Errorf("after close took %v (done %v), want the one stderr line and done", got, done)
	}
	if tap.Dropped() != 7 {
		t.Errorf("dropped %d after draining, want still 7", tap.Dropped())
	}
	tap.Close() // after the log closed it: no panic
}

// TestStuckTapNeverHoldsCapture: with a tap whose reader never reads (a
// parser stuck), an app writing 5 MiB of stderr through a real pipe is
// never held back: every write completes, the sink gets every line, and
// the tap counts what it could not hold.
func TestStuckTapNeverHoldsCapture(t *testing.T) {
	sink := &memSink{}
	a := NewApp("web", Options{Sink: sink})
	tap := a.Tap(Query{Stream: Stderr}, 64<<10)
	r, w := pipe(t)
	c := a.Attach(1, nil, r, nil)
	line := strings.Repeat("x", 99) + "\n"
	const lines = 50_000
	start := time.Now()
	waitDone(t, "5 MiB written to stderr", writeAsync(t, w, []byte(strings.Repeat(line, lines))))
	took := time.Since(start)
	finish(t, a, c, w)
	got := len(sinkLines(sink.String(), "stderr"))
	t.Logf("%d lines written in %s; sink %d lines; tap dropped %d", lines, took.Round(time.Millisecond), got, tap.Dropped())
	if got != lines {
		t.Errorf("sink got %d lines, want %d", got, lines)
	}
	if tap.Dropped() == 0 || tap.Dropped() >= lines {
		t.Errorf("tap dropped %d of %d lines; want some, not all", tap.Dropped(), lines)
	}
}
