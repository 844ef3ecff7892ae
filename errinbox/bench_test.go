package errinbox

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/logs"
)

// BenchmarkInboxLines is the parser's cost per stderr line: on a Flask
// app's output (five tracebacks, chained ones included, among log lines),
// and on Gunicorn log lines without a traceback. ns/op divided by the
// lines per op is the cost of one line.
func BenchmarkInboxLines(b *testing.B) {
	text, err := os.ReadFile(filepath.Join("testdata", "flask.stderr"))
	if err != nil {
		b.Fatal(err)
	}
	b.Run("tracebacks", func(b *testing.B) { benchLines(b, string(text)) })
	plain := strings.Repeat("[2026-12-07 02:00:00 +0000] [41] [INFO] Booting worker with pid: 52\n", 100)
	b.Run("plain", func(b *testing.B) { benchLines(b, plain) })
}

func benchLines(b *testing.B, text string) {
	var lines []logs.Line
	for _, l := range strings.Split(strings.TrimSuffix(string(text), "\n"), "\n") {
		lines = append(lines, logs.Line{Time: time.Unix(0, 0), Gen: 1, Stream: logs.Stderr, Text: l})
	}
	in := New(Options{})
	asm := map[int]*assembler{}
	b.ReportMetric(float64(len(lines)), "lines/op")
	for b.Loop() {
		for i := range lines {
			in.line(asm, &lines[i], lines[i].Time)
		}
	}
	b.StopTimer()
	in.flush(asm, map[int]time.Time{})
}
