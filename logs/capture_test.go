package logs

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestSplitter(t *testing.T) {
	type piece struct {
		text string
		part int
		more bool
	}
	cases := []struct {
		name   string
		in     []string // fed one after the other
		pieces []piece
	}{
		{"whole lines", []string{"ab\ncd\n"}, []piece{{"ab", 0, false}, {"cd", 0, false}}},
		{"line across feeds", []string{"a", "b", "c\n"}, []piece{{"abc", 0, false}}},
		{"exactly max", []string{"abcd\n"}, []piece{{"abcd", 0, false}}},
		{"max plus one", []string{"abcde\n"}, []piece{{"abcd", 1, true}, {"e", 2, false}}},
		{"twice max", []string{"abcdefgh\n"}, []piece{{"abcd", 1, true}, {"efgh", 2, false}}},
		{"long across feeds", []string{"abc", "defghij", "\nz\n"}, []piece{{"abcd", 1, true}, {"efgh", 2, true}, {"ij", 3, false}, {"z", 0, false}}},
		{"empty lines", []string{"\n\n"}, []piece{{"", 0, false}, {"", 0, false}}},
		{"partial flushed", []string{"x\nyz"}, []piece{{"x", 0, false}, {"yz", 0, false}}},
		{"partial long flushed", []string{"abcdef"}, []piece{{"abcd", 1, true}, {"ef", 2, false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := splitter{max: 4}
			var got []piece
			emit := func(text []byte, part int, more bool) { got = append(got, piece{string(text), part, more}) }
			for _, in := range tc.in {
				s.feed([]byte(in), emit)
			}
			s.flush(emit)
			if fmt.Sprint(got) != fmt.Sprint(tc.pieces) {
				t.Fatalf("got %v, want %v", got, tc.pieces)
			}
		})
	}
}

// A 5 MiB line followed by ordinary lines: the ordinary lines arrive, the
// long one arrives whole as marked pieces of MaxLine bytes.
func TestLongLineThenOrdinaryLines(t *testing.T) {
	sink := &memSink{}
	a := NewApp("web", Options{Sink: sink, QueueBytes: 16 << 20})
	r, w := pipe(t)
	c := a.Attach(1, r, nil, nil)

	long := bytes.Repeat([]byte("0123456789abcdef"), 5<<20/16)
	var data bytes.Buffer
	data.Write(long)
	data.WriteByte('\n')
	for i := range 100 {
		fmt.Fprintf(&data, "ordinary %d\n", i)
	}
	waitDone(t, "writer", writeAsync(t, w, data.Bytes()))
	finish(t, a, c, w)

	out := sink.String()
	got := sinkLines(out, "stdout")
	if len(got) != 100 {
		t.Fatalf("got %d whole stdout lines, want the 100 ordinary ones", len(got))
	}
	for i, l := range got {
		if l != "ordinary "+strconv.Itoa(i) {
			t.Fatalf("line %d = %q", i, l)
		}
	}
	pieces := 5 << 20 / DefaultMaxLine
	byMarker := map[string][]string{}
	for _, l := range strings.Split(out, "\n") {
		if head, text, ok := strings.Cut(l, "): "); ok && strings.Contains(head, "(split ") {
			byMarker[head+")"] = append(byMarker[head+")"], text)
		}
	}
	if len(byMarker) != pieces {
		t.Fatalf("%d distinct split markers, want %d", len(byMarker), pieces)
	}
	var joined strings.Builder
	for k := 1; k <= pieces; k++ {
		marker := fmt.Sprintf("web[1] stdout (split %d)", k)
		if k == pieces {
			marker = fmt.Sprintf("web[1] stdout (split %d, end)", k)
		}
		got := byMarker[marker]
		if len(got) != 1 || len(got[0]) != DefaultMaxLine {
			t.Fatalf("piece %d: %d lines marked %q (want one of %d bytes)", k, len(got), marker, DefaultMaxLine)
		}
		joined.WriteString(got[0])
	}
	if joined.String() != string(long) {
		t.Fatal("the pieces do not join into the long line")
	}
	if a.Dropped() != 0 {
		t.Fatalf("dropped %d lines", a.Dropped())
	}
}

// stdout and stderr stay apart, and an unterminated last line is delivered
// at EOF. stderr comes through Adopt, as after a supervisor upgrade.
func TestStreamsAndPartialLastLine(t *testing.T) {
	sink := &memSink{}
	a := NewApp("web", Options{Sink: sink})
	ro, wo := pipe(t)
	var p [2]int
	if err := unix.Pipe2(p[:], 0); err != nil { // blocking, inheritable: as handed over
		t.Fatal(err)
	}
	we := os.NewFile(uintptr(p[1]), "stderr write end")
	re, err := Adopt(p[0], "stderr")
	if err != nil {
		t.Fatal(err)
	}
	c := a.Attach(3, ro, re, nil)
	if fo, fe := c.FDs(); fo < 0 || fe != p[0] {
		t.Fatalf("FDs() = %d, %d; want the stdout fd and %d", fo, fe, p[0])
	}
	waitDone(t, "stdout writer", writeAsync(t, wo, []byte("out 1\nout partial")))
	waitDone(t, "stderr writer", writeAsync(t, we, []byte("Traceback (most recent call last):\nValueError: boom\n")))
	if err := we.Close(); err != nil {
		t.Fatal(err)
	}
	finish(t, a, c, wo)

	texts := func(ls []Line) string {
		var s []string
		for _, l := range ls {
			s = append(s, l.Text)
		}
		return strings.Join(s, "|")
	}
	if got := texts(a.Lines(Query{Stream: Stdout})); got != "out 1|out partial" {
		t.Fatalf("stdout lines %q", got)
	}
	if got := texts(a.Lines(Query{Stream: Stderr, Gen: 3, N: 1})); got != "ValueError: boom" {
		t.Fatalf("last stderr line %q", got)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close after EOF: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := a.Close(context.Background()); err != nil {
		t.Fatalf("second log Close: %v", err)
	}
	out := sink.String()
	for _, want := range []string{"web[3] stdout: out partial\n", "web[3] stderr: ValueError: boom\n"} {
		if !strings.Contains(out, want) {
			t.Fatalf("sink output %q lacks %q", out, want)
		}
	}
}

// threads returns the process's OS thread count from /proc/self/status.
func threads(t testing.TB) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no Threads line in /proc/self/status")
	return 0
}

// 500 idle captures wait in the runtime poller, not in 500 blocked reads.
func TestIdleCapturesCostNoThreads(t *testing.T) {
	const apps = 500
	before := threads(t)
	type capt struct {
		a *App
		c *Capture
		w *os.File
	}
	var cs []capt
	for i := range apps {
		a := NewApp("app"+strconv.Itoa(i), Options{})
		r, w := pipe(t)
		cs = append(cs, capt{a, a.Attach(1, r, nil, nil), w})
	}
	// One line each proves every capture read once and went back to wait.
	for _, x := range cs {
		if _, err := x.w.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
	}
	for _, x := range cs {
		waitFor(t, "line in ring of "+x.a.Name(), func() bool { return len(x.a.Lines(Query{})) == 1 })
	}
	during := threads(t)
	for range 50 { // give blocked reads, if any, time to take threads
		runtime.Gosched()
		if n := threads(t); n > during {
			during = n
		}
	}
	t.Logf("OS threads: %d before, %d with %d idle captures (GOMAXPROCS %d)", before, during, apps, runtime.GOMAXPROCS(0))
	if during > 32 {
		t.Fatalf("%d OS threads with %d idle captures, want at most 32", during, apps)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, x := range cs {
		if err := x.c.Close(); err != nil {
			t.Fatal(err)
		}
		waitDone(t, "capture end", x.c.Done())
		if err := x.a.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAttachOnDone: onDone runs once, after Done is closed, when the last
// stream ends (at once without streams), and a capture costs one goroutine
// per stream.
func TestAttachOnDone(t *testing.T) {
	a := NewApp("web", Options{})
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := a.Close(ctx); err != nil {
			t.Error(err)
		}
	}()
	var mu sync.Mutex // c is set under mu: onDone may read it
	var c *Capture
	called := make(chan struct{})
	onDone := func() {
		mu.Lock()
		defer mu.Unlock()
		select {
		case <-c.Done():
		default:
			t.Error("onDone ran before Done was closed")
		}
		close(called) // a second call would panic
	}
	ro, wo := pipe(t)
	re, we := pipe(t)
	g0 := runtime.NumGoroutine()
	mu.Lock()
	c = a.Attach(1, ro, re, onDone)
	mu.Unlock()
	if g := runtime.NumGoroutine() - g0; g > 2 {
		t.Errorf("a capture of two streams started %d goroutines, want 2", g)
	}
	if err := wo.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
		t.Fatal("Done closed while stderr is still open")
	case <-time.After(50 * time.Millisecond): // a short look for a premature close
	}
	if err := we.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "onDone after both streams ended", called)

	none := make(chan struct{})
	c2 := a.Attach(2, nil, nil, func() { close(none) })
	waitDone(t, "Done without streams", c2.Done())
	waitDone(t, "onDone without streams", none)
}
