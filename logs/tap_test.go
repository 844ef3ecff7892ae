package logs

import (
	"context"
	"testing"
)

// TestTapDropsWhenBehind: a tap that is not read takes lines up to its
// buffer and counts the rest as dropped, without holding the capture back;
// lines of other streams are not offered; closing the log closes the tap.
func TestTapDropsWhenBehind(t *testing.T) {
	a := NewApp("web", Options{})
	tap := a.Tap(Query{Stream: Stderr}, 3)
	var batch []Line
	for range 10 {
		batch = append(batch, Line{Gen: 1, Stream: Stderr, Text: "err"}, Line{Gen: 1, Stream: Stdout, Text: "out"})
	}
	a.publish(batch)
	if got := tap.Dropped(); got != 7 {
		t.Errorf("dropped %d stderr lines, want 7 (10 offered, buffer 3)", got)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	n := 0
	for l := range tap.C {
		if l.Stream != Stderr {
			t.Errorf("tap got a %s line", l.Stream)
		}
		n++
	}
	if n != 3 {
		t.Errorf("tap delivered %d lines, want 3", n)
	}
	tap.Close() // after the log closed it: no panic
}
