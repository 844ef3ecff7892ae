package logs

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// The ring never holds more than its bound, and keeps the newest lines.
func TestRingBound(t *testing.T) {
	const bound = 100 << 10
	r := newRing(bound)
	for i := range 20000 {
		text := strconv.Itoa(i) + " " + strings.Repeat("y", i%300)
		st := Stdout
		if i%3 == 0 {
			st = Stderr
		}
		r.add([]Line{{Gen: 1, Stream: st, Text: text}})
		if b, _ := r.usage(); b > bound {
			t.Fatalf("after line %d the ring holds %d bytes, over %d", i, b, bound)
		}
	}
	b, n := r.usage()
	t.Logf("ring: %d lines, %d bytes (bound %d)", n, b, bound)
	all := r.snapshot(Query{})
	if len(all) != n || !strings.HasPrefix(all[n-1].Text, "19999 ") {
		t.Fatalf("snapshot has %d lines ending %q", len(all), all[len(all)-1].Text)
	}
	for i := 1; i < len(all); i++ {
		prev, _ := strconv.Atoi(strings.Fields(all[i-1].Text)[0])
		cur, _ := strconv.Atoi(strings.Fields(all[i].Text)[0])
		if cur != prev+1 {
			t.Fatalf("lines out of order: %d after %d", cur, prev)
		}
	}
	errs := r.snapshot(Query{N: 2, Stream: Stderr})
	if len(errs) != 2 || !strings.HasPrefix(errs[0].Text, "19995 ") || !strings.HasPrefix(errs[1].Text, "19998 ") {
		t.Fatalf("last two stderr lines: %+v", errs)
	}
}

// receive returns the next line from f with a limit.
func receive(t *testing.T, f *Follower) (Line, bool) {
	t.Helper()
	select {
	case l, ok := <-f.C:
		return l, ok
	case <-time.After(20 * time.Second):
		t.Fatal("no line for the follower")
		return Line{}, false
	}
}

// A follower gets the recent lines, then live ones; a stderr follower only
// stderr; a follower that falls behind is ended and told, without holding
// up capture.
func TestFollow(t *testing.T) {
	a := NewApp("web", Options{})
	ro, wo := pipe(t)
	re, we := pipe(t)
	c := a.Attach(2, ro, re, nil)
	waitDone(t, "write", writeAsync(t, wo, []byte("one\n")))
	waitFor(t, "first line", func() bool { return len(a.Lines(Query{})) == 1 })

	recent, f := a.Follow(Query{N: 10}, 16)
	defer f.Close()
	_, ferr := a.Follow(Query{Stream: Stderr}, 16)
	defer ferr.Close()
	_, slow := a.Follow(Query{}, 1)
	if len(recent) != 1 || recent[0].Text != "one" {
		t.Fatalf("recent lines %+v", recent)
	}
	waitDone(t, "write", writeAsync(t, wo, []byte("two\n")))
	if l, _ := receive(t, f); l.Text != "two" || l.Stream != Stdout || l.Gen != 2 {
		t.Fatalf("followed %+v", l)
	}
	waitDone(t, "write", writeAsync(t, we, []byte("oops\n")))
	if l, _ := receive(t, f); l.Text != "oops" || l.Stream != Stderr {
		t.Fatalf("followed %+v", l)
	}
	if l, _ := receive(t, ferr); l.Text != "oops" {
		t.Fatalf("stderr follower got %+v", l)
	}
	// slow read nothing: its buffer of one held "two", "oops" ended it.
	if l, ok := receive(t, slow); !ok || l.Text != "two" {
		t.Fatalf("slow follower got %+v", l)
	}
	if _, ok := receive(t, slow); ok || !slow.Lagged() {
		t.Fatal("a follower that fell behind was not ended and marked lagged")
	}
	slow.Close() // safe after it was ended
	if err := we.Close(); err != nil {
		t.Fatal(err)
	}
	finish(t, a, c, wo)
	if _, ok := receive(t, f); ok || f.Lagged() {
		t.Fatal("closing the log did not end the follower cleanly")
	}
}
