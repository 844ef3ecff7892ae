package supervise

import (
	"bufio"
	"io"
	"os"
	"strings"
	"sync"
)

// LogSink receives every line an app writes to stdout or stderr. It is the
// seam for log capture (files with rotation, `supctl logs -f`): a sink must
// not block for long, since a full pipe stalls the app.
type LogSink interface {
	Line(app string, gen int, line string)
}

// WriterSink writes "app[gen]: line" to w, one line at a time.
type WriterSink struct {
	mu sync.Mutex
	W  io.Writer
}

// Line implements LogSink. Write errors are dropped: a broken log stream
// must never stop an app.
func (s *WriterSink) Line(app string, gen int, line string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	b.WriteString(app)
	b.WriteByte('[')
	b.WriteString(itoa(gen))
	b.WriteString("]: ")
	b.WriteString(line)
	b.WriteByte('\n')
	_, _ = io.WriteString(s.W, b.String()) // see doc: a log write failure is not an app failure
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var buf [20]byte
	i := len(buf)
	neg := n < 0
	if neg {
		n = -n
	}
	for n > 0 {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	if neg {
		i--
		buf[i] = '-'
	}
	return string(buf[i:])
}

// tail keeps the last lines a generation wrote (for a reload's failure
// report: the Python traceback).
type tail struct {
	mu    sync.Mutex
	lines []string
	max   int
}

func (t *tail) add(s string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, s)
	if len(t.lines) > t.max {
		t.lines = t.lines[len(t.lines)-t.max:]
	}
}

func (t *tail) get() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]string(nil), t.lines...)
}

// capture reads r (the read end of a generation's output pipe) until every
// writer has closed it, feeding the sink and the tail; done is closed at EOF.
func capture(r *os.File, app string, gen int, sink LogSink, t *tail, done chan<- struct{}) {
	defer close(done)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		t.add(line)
		sink.Line(app, gen, line)
	}
	// A line over 1 MiB stops the scanner: keep draining so the app never
	// blocks on a full pipe.
	_, _ = io.Copy(io.Discard, r) // the read error, if any, is EOF's kin: nothing to report
}
