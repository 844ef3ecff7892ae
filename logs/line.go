// Package logs captures the output of an app's processes and delivers it
// without ever letting a stuck reader stall the app for more than sinkStuck.
//
// One App per configured app holds:
//   - captures: one goroutine per output stream of a generation, reading a
//     pipe through the Go runtime poller (an idle app costs no OS thread),
//     cutting the bytes into lines and splitting lines longer than MaxLine
//     into marked pieces;
//   - a ring of the recent lines, bounded in bytes, whatever the sink, with
//     live followers (`supctl logs -f`);
//   - a queue bounded in bytes in front of the sink, drained by one writer
//     goroutine: a full queue holds the capture back while the sink writes
//     (so a long line reaches a healthy disk whole); once the sink made no
//     progress for sinkStuck, further lines are dropped and counted
//     (Dropped), and a notice "N lines dropped" is written once the sink
//     takes lines again.
//
// Sinks are io.Writers that receive whole formatted lines: WriterSink (the
// supervisor's stdout, shared by apps), FileSink (a rotated file), or none.
package logs

import (
	"strconv"
	"time"
	"unsafe"
)

// Stream names where a line came from.
type Stream uint8

const (
	// Stdout is the app's standard output.
	Stdout Stream = iota + 1
	// Stderr is the app's standard error (Gunicorn's error log, tracebacks).
	Stderr
	// Notice is a line the supervisor adds to the app's log, such as
	// "N lines dropped".
	Notice
)

// String returns "stdout", "stderr" or "log" (a supervisor notice).
func (s Stream) String() string {
	switch s {
	case Stdout:
		return "stdout"
	case Stderr:
		return "stderr"
	case Notice:
		return "log"
	}
	return "stream" + strconv.Itoa(int(s))
}

// Line is one line of an app's output, without its newline. Its JSON form
// (App left out) is how a self-upgrade hands the recent lines to the next
// image (see App.Recent): an older or newer image reads it, so the names
// stay as they are.
type Line struct {
	// Time is when the supervisor read the line.
	Time time.Time `json:"t"`
	App  string    `json:"-"`
	// Gen is the generation of the app that wrote the line.
	Gen    int    `json:"gen"`
	Stream Stream `json:"s"`
	Text   string `json:"x"`
	// Part is 0 for a whole line. A line longer than the capture's MaxLine
	// is delivered as pieces numbered 1, 2, ... in order; every piece but
	// the last has More set.
	Part int  `json:"part,omitempty"`
	More bool `json:"more,omitempty"`
}

// lineOverhead is what a line costs in a byte bound beyond its text.
const lineOverhead = int(unsafe.Sizeof(Line{}))

// cost is the number of bytes a line is charged against the queue's and the
// ring's bounds: its text plus its header.
func (l *Line) cost() int { return len(l.Text) + lineOverhead }

// TimeFormat is RFC 3339 with milliseconds, as written in front of lines.
const TimeFormat = "2006-01-02T15:04:05.000Z07:00"

// AppendFormat appends l as one line of text ending in '\n' and returns the
// extended slice:
//
//	[TIME ]APP[GEN] STREAM: TEXT
//	[TIME ]APP[GEN] STREAM (split K): TEXT        a piece followed by more
//	[TIME ]APP[GEN] STREAM (split K, end): TEXT   the last piece
//
// TIME (UTC, TimeFormat) is written only when timestamps is true.
func AppendFormat(dst []byte, l *Line, timestamps bool) []byte {
	var ts []byte
	if timestamps {
		var buf [len(TimeFormat) + 8]byte
		ts = l.Time.UTC().AppendFormat(buf[:0], TimeFormat)
	}
	return appendLine(dst, l, ts)
}

// appendLine is AppendFormat with the timestamp already formatted (nil:
// none).
func appendLine(dst []byte, l *Line, ts []byte) []byte {
	if ts != nil {
		dst = append(dst, ts...)
		dst = append(dst, ' ')
	}
	dst = append(dst, l.App...)
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(l.Gen), 10)
	dst = append(dst, "] "...)
	dst = append(dst, l.Stream.String()...)
	if l.Part > 0 {
		dst = append(dst, " (split "...)
		dst = strconv.AppendInt(dst, int64(l.Part), 10)
		if !l.More {
			dst = append(dst, ", end"...)
		}
		dst = append(dst, ')')
	}
	dst = append(dst, ": "...)
	dst = append(dst, l.Text...)
	return append(dst, '\n')
}

// stampCache formats timestamps, reusing the last one while the
// millisecond does not change (lines read together share their time).
type stampCache struct {
	ms  int64
	buf []byte
}

// stamp returns t formatted per TimeFormat, valid until the next call.
func (c *stampCache) stamp(t time.Time) []byte {
	if ms := t.UnixMilli(); ms != c.ms || c.buf == nil {
		c.ms = ms
		c.buf = t.UTC().AppendFormat(c.buf[:0], TimeFormat)
	}
	return c.buf
}

// dropNotice is the line that reports n lines lost between the capture and
// the sink.
func dropNotice(app string, gen int, n uint64) Line {
	return Line{
		Time:   time.Now(),
		App:    app,
		Gen:    gen,
		Stream: Notice,
		Text:   strconv.FormatUint(n, 10) + " lines dropped: the log sink did not take them",
	}
}
