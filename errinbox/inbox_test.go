package errinbox

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/logs"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// fakeSource is a lineSource fed by the test.
type fakeSource struct {
	mu     sync.Mutex
	buf    []logs.Line
	closed bool
	ready  chan struct{}
}

func newFakeSource() *fakeSource { return &fakeSource{ready: make(chan struct{}, 1)} }

func (f *fakeSource) Ready() <-chan struct{} { return f.ready }

func (f *fakeSource) Take(dst []logs.Line) ([]logs.Line, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	dst = append(dst, f.buf...)
	f.buf = nil
	return dst, f.closed
}

// push queues lines (end: and ends the source) and wakes the reader.
func (f *fakeSource) push(end bool, lines ...logs.Line) {
	f.mu.Lock()
	f.buf = append(f.buf, lines...)
	f.closed = f.closed || end
	f.mu.Unlock()
	select {
	case f.ready <- struct{}{}:
	default:
	}
}

// readLines feeds text's lines, tagged with generation gen, through the
// inbox's reader loop and returns once it has read them all and flushed.
func readLines(in *Inbox, gen int, text string) {
	src := newFakeSource()
	done := make(chan struct{})
	go func() {
		in.read(src, time.Hour)
		close(done)
	}()
	t0 := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	for i, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		src.push(false, logs.Line{Time: t0.Add(time.Duration(i) * time.Second), Gen: gen, Stream: logs.Stderr, Text: l})
	}
	src.push(true)
	<-done
}

// summary prints the inbox's groups (oldest first) and counters, the
// golden files' form.
func summary(in *Inbox) string {
	var b strings.Builder
	groups := in.Groups()
	slices.Reverse(groups)
	for _, g := range groups {
		fmt.Fprintf(&b, "%s %s count=%d gen=%d first=%s last=%s\n  where: %s\n  message: %s\n  traceback: %d lines, last %q\n",
			g.Fingerprint, g.Exception, g.Count, g.Generation, g.FirstSeen.Format("15:04:05"), g.LastSeen.Format("15:04:05"),
			g.Where, g.Message, len(g.Traceback), g.Traceback[len(g.Traceback)-1])
	}
	c := in.Counts()
	for _, k := range slices.Sorted(mapsKeys(c.Exceptions)) {
		fmt.Fprintf(&b, "exceptions{%s} %d\n", k, c.Exceptions[k])
	}
	fmt.Fprintf(&b, "worker_timeouts %d\n", c.WorkerTimeouts)
	for _, k := range slices.Sorted(mapsKeys(c.WorkerKilled)) {
		fmt.Fprintf(&b, "worker_killed{%s} %d\n", k, c.WorkerKilled[k])
	}
	return b.String()
}

func mapsKeys(m map[string]uint64) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestGolden: the stderr of a Flask app (library frames, chained
// exceptions by cause and by context), a Django app (the same view failing
// at two line numbers, a library raising) and a Gunicorn worker failing to
// import an app with a SyntaxError give the groups and counts of
// testdata/NAME.golden.
func TestGolden(t *testing.T) {
	for _, name := range []string{"flask", "django", "syntax"} {
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join("testdata", name+".stderr"))
			if err != nil {
				t.Fatal(err)
			}
			in := New(Options{})
			readLines(in, 3, string(text))
			got := summary(in)
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s: got\n%s\nwant\n%s", name, got, want)
			}
		})
	}
}

// TestBounds: the inbox keeps MaxGroups groups, evicting the least recently
// seen, and counts exception types beyond MaxTypes as "other"; counters
// survive evictions.
func TestBounds(t *testing.T) {
	in := New(Options{MaxGroups: 2, MaxTypes: 2})
	tb := func(typ, fn string) []string {
		return []string{tracebackHeader, `  File "/srv/app/app.py", line 3, in ` + fn, typ + ": x"}
	}
	t0 := time.Unix(0, 0)
	in.Record(tb("ValueError", "a"), 1, t0)
	in.Record(tb("KeyError", "b"), 1, t0.Add(time.Second))
	in.Record(tb("ValueError", "a"), 2, t0.Add(2*time.Second)) // a is now the most recent
	in.Record(tb("TypeError", "c"), 2, t0.Add(3*time.Second))  // evicts b
	var got []string
	for _, g := range in.Groups() {
		got = append(got, fmt.Sprintf("%s/%d/gen%d", g.Exception, g.Count, g.Generation))
	}
	if want := []string{"TypeError/1/gen2", "ValueError/2/gen1"}; !slices.Equal(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
	c := in.Counts().Exceptions
	if c["ValueError"] != 2 || c["KeyError"] != 1 || c[OtherType] != 1 || len(c) != 3 {
		t.Errorf("exception counts %v, want ValueError 2, KeyError 1, other 1", c)
	}
	if in.Record([]string{tracebackHeader, `  File "x.py", line 1, in f`}, 1, t0) {
		t.Error("a traceback without an exception line was recorded")
	}
}

// TestQuietCompletes: a traceback that ends the output (nothing follows to
// close it) is recorded once the stream stays quiet, and tracebacks of two
// generations written at once are assembled apart.
func TestQuietCompletes(t *testing.T) {
	in := New(Options{})
	src := newFakeSource()
	done := make(chan struct{})
	go func() {
		in.read(src, 20*time.Millisecond)
		close(done)
	}()
	defer func() { src.push(true); <-done }()
	now := time.Now()
	send := func(gen int, text string) {
		src.push(false, logs.Line{Time: now, Gen: gen, Stream: logs.Stderr, Text: text})
	}
	send(1, tracebackHeader)
	send(2, tracebackHeader)
	send(1, `  File "/srv/app/one.py", line 1, in f`)
	send(2, `  File "/srv/app/two.py", line 1, in g`)
	send(2, "KeyError: 'two'")
	send(1, "ValueError: one")
	testenv.WaitFor(t, 10*time.Second, "two groups", func() bool { return len(in.Groups()) == 2 })
	var got []string
	for _, g := range in.Groups() {
		got = append(got, fmt.Sprintf("%s gen%d %s", g.Exception, g.Generation, g.Where))
	}
	slices.Sort(got)
	want := []string{"KeyError gen2 /srv/app/two.py:1 in g", "ValueError gen1 /srv/app/one.py:1 in f"}
	if !slices.Equal(got, want) {
		t.Errorf("groups %v, want %v", got, want)
	}
}

// TestParseFrame: frame lines with and without a function (a SyntaxError's
// frame has none) are read; other indented lines are not frames.
func TestParseFrame(t *testing.T) {
	for _, c := range []struct {
		line string
		want Frame
		ok   bool
	}{
		{`  File "/srv/app/app.py", line 12, in parse`, Frame{File: "/srv/app/app.py", Line: 12, Function: "parse"}, true},
		{`  File "/srv/app/bad.py", line 1`, Frame{File: "/srv/app/bad.py", Line: 1}, true},
		{`  File "<frozen importlib._bootstrap>", line 1206, in _gcd_import`, Frame{File: "<frozen importlib._bootstrap>", Line: 1206, Function: "_gcd_import"}, true},
		{`    return int(value)`, Frame{}, false},
		{`  File "x.py", line many, in f`, Frame{}, false},
	} {
		got, ok := parseFrame(c.line)
		if got != c.want || ok != c.ok {
			t.Errorf("parseFrame(%q) = %+v, %v; want %+v, %v", c.line, got, ok, c.want, c.ok)
		}
	}
}

// TestWorkerDeathsByGeneration: the master's lines about a worker's end
// count for the generation whose stderr they came from; only the last
// maxDeathGens generations are kept.
func TestWorkerDeathsByGeneration(t *testing.T) {
	in := New(Options{})
	readLines(in, 3, "[2026-12-07 02:00:00 +0000] [10] [CRITICAL] WORKER TIMEOUT (pid:11)\n"+
		"[2026-12-07 02:00:01 +0000] [10] [WARNING] Worker with pid 12 was terminated due to signal 9\n"+
		"[2026-12-07 02:00:02 +0000] [10] [INFO] Booting worker with pid: 13\n")
	if got := in.WorkerDeaths(3); got != 2 {
		t.Errorf("generation 3: %d worker deaths, want 2", got)
	}
	if got := in.WorkerDeaths(2); got != 0 {
		t.Errorf("generation 2: %d worker deaths, want 0", got)
	}
	in.WorkerDied(3 + maxDeathGens)
	if got := in.WorkerDeaths(3); got != 0 {
		t.Errorf("generation 3 after %d newer: %d worker deaths kept, want 0", maxDeathGens, got)
	}
}

// TestNewGroups: a canary generation is worse on the groups first seen in
// it at least MinNewGroup times, not on groups an older generation had
// first; a nil inbox judges nothing.
func TestNewGroups(t *testing.T) {
	tb := func(typ, fn, msg string) []string {
		return []string{tracebackHeader, `  File "/srv/app/app.py", line 3, in ` + fn, msg}
	}
	in := New(Options{})
	t0 := time.Unix(0, 0)
	for i := range MinNewGroup {
		in.Record(tb("KeyError", "old", "KeyError: 'x'"), 1, t0.Add(time.Duration(i)*time.Second))
		in.Record(tb("LookupError", "new", "LookupError: gone"), 2, t0.Add(time.Duration(i)*time.Second))
	}
	for i := range MinNewGroup - 1 {
		in.Record(tb("ValueError", "rare", "ValueError: rare"), 2, t0.Add(time.Duration(i)*time.Second))
	}
	in.Record(tb("KeyError", "old", "KeyError: 'x'"), 2, t0.Add(time.Minute)) // group of generation 1
	want := []string{fmt.Sprintf("new exception LookupError: gone (%d times)", MinNewGroup)}
	if got := in.NewGroups(2); !slices.Equal(got, want) {
		t.Errorf("NewGroups(2) = %q, want %q", got, want)
	}
	var none *Inbox
	if got := none.NewGroups(2); got != nil || none.WorkerDeaths(2) != 0 {
		t.Errorf("nil inbox: groups %q, deaths %d", got, none.WorkerDeaths(2))
	}
}
