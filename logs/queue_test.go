package logs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// blockingSink blocks its first Write until release is closed.
type blockingSink struct {
	memSink
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (b *blockingSink) Write(p []byte) (int, error) {
	b.once.Do(func() {
		close(b.entered)
		<-b.release
	})
	return b.memSink.Write(p)
}

// dropNotices sums the counts of the "N lines dropped" notices in out.
func dropNotices(t *testing.T, out string) uint64 {
	var sum uint64
	for _, text := range sinkLines(out, "log") {
		n, rest, ok := strings.Cut(text, " ")
		if !ok || !strings.HasPrefix(rest, "lines dropped") {
			t.Fatalf("unexpected notice %q", text)
		}
		v, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		sum += v
	}
	return sum
}

// stallAndRecover writes 50,000 lines to w while the app's sink is stalled
// and checks that the writes complete and lines are counted as dropped;
// then it lets the sink go (release), waits for the drop notice (out
// returns what the sink received so far), writes two more lines and ends
// the capture. It returns the number of lines written.
func stallAndRecover(t *testing.T, a *App, c *Capture, w *os.File, stalled <-chan struct{}, release func(), out func() string) uint64 {
	const lines = 50000 // 5 MB: far more than the pipe and the queue hold
	var data bytes.Buffer
	for i := range lines {
		fmt.Fprintf(&data, "line %06d %s\n", i, strings.Repeat("x", 88))
	}
	written := writeAsync(t, w, data.Bytes())
	waitDone(t, "the sink to stall", stalled)
	waitDone(t, "the app's writes while the sink is stalled", written)
	if a.Dropped() == 0 {
		t.Fatal("no line counted as dropped while the sink was stalled")
	}
	// Every line written so far has been read once the sentinel is in the ring.
	waitDone(t, "sentinel write", writeAsync(t, w, []byte("sentinel\n")))
	waitFor(t, "sentinel in ring", func() bool {
		l := a.Lines(Query{N: 1})
		return len(l) == 1 && l[0].Text == "sentinel"
	})
	release()
	waitFor(t, "drop notice in sink", func() bool { return strings.Contains(out(), "lines dropped") })
	waitDone(t, "writes after recovery", writeAsync(t, w, []byte("after 1\nafter 2\n")))
	finish(t, a, c, w)
	return lines + 1 + 2
}

// checkRecovered checks the sink's output after stallAndRecover: logging
// resumed, and every line was either written or counted as dropped, as the
// notices say.
func checkRecovered(t *testing.T, a *App, out string, total uint64) {
	got := sinkLines(out, "stdout")
	if n := len(got); n < 2 || got[n-2] != "after 1" || got[n-1] != "after 2" {
		t.Fatalf("logging did not resume: last lines %q", got[max(0, len(got)-3):])
	}
	if uint64(len(got))+a.Dropped() != total {
		t.Fatalf("%d lines written + %d dropped != %d lines", len(got), a.Dropped(), total)
	}
	if n := dropNotices(t, out); n != a.Dropped() {
		t.Fatalf("notices report %d dropped lines, counter says %d", n, a.Dropped())
	}
	t.Logf("%d lines: %d written, %d dropped", total, len(got), a.Dropped())
}

// A sink that blocks never blocks the app: its output is read on, lines
// that do not fit the queue are dropped and counted, and once the sink
// takes lines again a notice reports the drop and logging resumes.
func TestBlockedSinkNeverBlocksWriter(t *testing.T) {
	sink := &blockingSink{entered: make(chan struct{}), release: make(chan struct{})}
	a := NewApp("web", Options{Sink: sink, QueueBytes: 64 << 10})
	r, w := pipe(t)
	c := a.Attach(1, r, nil, nil)
	total := stallAndRecover(t, a, c, w, sink.entered, func() { close(sink.release) }, sink.String)
	checkRecovered(t, a, sink.String(), total)
}

// The same with the stdout sink on a real pipe whose reader stopped reading
// (the supervisor's stdout under a stalled `docker logs`).
func TestStalledStdoutPipe(t *testing.T) {
	sr, sw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sr.Close() }() // a read end: nothing to lose
	a := NewApp("web", Options{Sink: NewWriterSink(sw), QueueBytes: 64 << 10})
	r, w := pipe(t)
	c := a.Attach(1, r, nil, nil)
	stalled := make(chan struct{})
	close(stalled) // nobody reads sr: the pipe fills with the first 64 KiB
	read := &memSink{}
	drained := make(chan struct{})
	release := func() {
		go func() {
			defer close(drained)
			_, _ = io.Copy(read, sr) // ends at EOF when sw is closed; an error ends the test's reading too
		}()
	}
	total := stallAndRecover(t, a, c, w, stalled, release, read.String)
	if err := sw.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, "sink pipe drained", drained)
	checkRecovered(t, a, read.String(), total)
}

// failingSink fails its writes while fail is set, writing half of the first
// failed chunk (a full disk).
type failingSink struct {
	memSink
	mu   sync.Mutex
	fail bool
	errs int
}

func (f *failingSink) setFail(v bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fail = v
}

func (f *failingSink) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.fail {
		return f.memSink.Write(p)
	}
	f.errs++
	if f.errs == 1 {
		n, _ := f.memSink.Write(p[:len(p)/2]) // a memory buffer does not fail
		return n, errors.New("no space left on device")
	}
	return 0, errors.New("no space left on device")
}

// Failed writes count their lines as dropped; after recovery the torn line
// is ended and a notice reports the loss.
func TestFailingSinkCountsAndRecovers(t *testing.T) {
	sink := &failingSink{fail: true}
	var reported []error
	a := NewApp("web", Options{Sink: sink, OnSinkError: func(err error) { reported = append(reported, err) }})
	r, w := pipe(t)
	c := a.Attach(1, r, nil, nil)
	waitDone(t, "write", writeAsync(t, w, []byte("lost 1\nlost 2\n")))
	waitFor(t, "failed lines counted", func() bool { return a.Dropped() == 2 })
	sink.setFail(false)
	waitDone(t, "write", writeAsync(t, w, []byte("kept\n")))
	finish(t, a, c, w)

	out := sink.String()
	if !strings.HasSuffix(out, "web[1] log: 2 lines dropped: the log sink did not take them\nweb[1] stdout: kept\n") {
		t.Fatalf("sink output %q", out)
	}
	if !strings.Contains(out, "\nweb[1] log:") {
		t.Fatalf("torn line not ended before the notice: %q", out)
	}
	if len(reported) != 1 {
		t.Fatalf("OnSinkError called %d times, want once per run of failures", len(reported))
	}
}

// stampSink records when each Write began.
type stampSink struct {
	memSink
	mu     sync.Mutex
	starts []time.Time
}

func (s *stampSink) Write(p []byte) (int, error) {
	s.mu.Lock()
	s.starts = append(s.starts, time.Now())
	s.mu.Unlock()
	return s.memSink.Write(p)
}

// TestWritesPaced: lines that trickle in one by one are written together,
// the sink's writes starting at least writePace apart, every line once and
// in order.
func TestWritesPaced(t *testing.T) {
	sink := &stampSink{}
	a := NewApp("web", Options{Sink: sink})
	const n = 100
	tick := time.NewTicker(time.Millisecond) // paces the input, as an app logging line by line
	for i := range n {
		<-tick.C
		a.publish([]Line{{App: "web", Gen: 1, Stream: Stdout, Text: "line " + strconv.Itoa(i)}})
	}
	tick.Stop()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatal(err)
	}
	got := sinkLines(sink.String(), "stdout")
	for i, l := range got {
		if l != "line "+strconv.Itoa(i) {
			t.Fatalf("sink line %d is %q", i, l)
		}
	}
	if len(got) != n {
		t.Fatalf("sink got %d lines, want %d", len(got), n)
	}
	sink.mu.Lock()
	defer sink.mu.Unlock()
	// The pause runs from one take to the next, and a write begins a little
	// after its take: half the pace is the bound. The last write may be the
	// one Close hurries. Unpaced, writes would follow the lines, a
	// millisecond apart.
	for i := 1; i < len(sink.starts)-1; i++ {
		if gap := sink.starts[i].Sub(sink.starts[i-1]); gap < writePace/2 {
			t.Errorf("write %d began %v after the one before, want about %v", i, gap, writePace)
		}
	}
	t.Logf("%d lines over %d writes", n, len(sink.starts))
}

// TestUrgentLinesEndThePause: while the writer pauses between writes, a
// chunk's worth of queued lines is written at once, and Close ends the
// pause.
func TestUrgentLinesEndThePause(t *testing.T) {
	sink := &memSink{}
	a := NewApp("web", Options{Sink: sink, writePace: time.Hour})
	a.publish([]Line{{App: "web", Gen: 1, Stream: Stdout, Text: "first"}})
	waitFor(t, "the first line in the sink", func() bool { return strings.Contains(sink.String(), "first") })
	batch := make([]Line, 0, 1000)
	for i := range cap(batch) {
		batch = append(batch, Line{App: "web", Gen: 1, Stream: Stdout, Text: fmt.Sprintf("bulk %04d %s", i, strings.Repeat("x", 90))})
	}
	a.publish(batch) // ~100 KB: more than a chunk
	waitFor(t, "the bulk lines in the sink", func() bool { return strings.Contains(sink.String(), "bulk 0999 ") })
	a.publish([]Line{{App: "web", Gen: 1, Stream: Stdout, Text: "last"}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.Close(ctx); err != nil {
		t.Fatalf("Close during an hour's pause: %v", err)
	}
	if !strings.HasSuffix(sink.String(), "stdout: last\n") {
		t.Errorf("the line queued before Close is missing:\n%.200s", sink.String())
	}
}

// diskSink takes a little time per write, as a busy but healthy disk does.
type diskSink struct {
	memSink
	per time.Duration
}

func (d *diskSink) Write(p []byte) (int, error) {
	time.Sleep(d.per) // the cost of a write, not a synchronisation
	return d.memSink.Write(p)
}

// A 2 MiB line reaches a slow but healthy sink whole, in all its pieces,
// through the queue bound the supervisor gives each app (256 KiB): the
// capture waits for the writer rather than dropping pieces.
func TestLongLineSlowHealthySink(t *testing.T) {
	sink := &diskSink{per: 2 * time.Millisecond}
	a := NewApp("web", Options{Sink: sink, QueueBytes: 256 << 10})
	r, w := pipe(t)
	c := a.Attach(1, r, nil, nil)
	long := bytes.Repeat([]byte("0123456789abcdef"), 2<<20/16)
	start := time.Now()
	waitDone(t, "writer", writeAsync(t, w, append(long, '\n')))
	finish(t, a, c, w)
	pieces := 0
	var joined strings.Builder
	for _, l := range strings.Split(sink.String(), "\n") {
		if _, text, ok := strings.Cut(l, "): "); ok && strings.Contains(l, "(split ") {
			pieces++
			joined.WriteString(text)
		}
	}
	t.Logf("%d pieces in %v, %d dropped", pieces, time.Since(start), a.Dropped())
	if a.Dropped() != 0 || pieces != 2<<20/DefaultMaxLine || joined.String() != string(long) {
		t.Fatalf("%d dropped, %d pieces (want %d), joined whole: %v", a.Dropped(), pieces, 2<<20/DefaultMaxLine, joined.String() == string(long))
	}
}
