package logs

import (
	"bytes"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// cpuTime returns the process's user plus system CPU time.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkCaptureToFile measures one op = one ~100-byte access-log line
// going from the write end of a pipe through capture, ring, queue and
// writer into a file sink with timestamps. cpu-ms/100k-lines is the
// process's CPU time (every goroutine, including the one writing the pipe).
func BenchmarkCaptureToFile(b *testing.B) {
	var data bytes.Buffer
	for i := range b.N {
		fmt.Fprintf(&data, "127.0.0.1 - - [29/Nov/2026:09:31:16 +0000] \"GET /item/%d HTTP/1.1\" 200 1234 \"-\" \"hey/0.0.1\"\n", i)
	}
	fs, err := NewFileSink(FileOptions{Path: filepath.Join(b.TempDir(), "app.log"), MaxSizeMB: 100, MaxFiles: 2})
	if err != nil {
		b.Fatal(err)
	}
	a := NewApp("web", Options{Sink: fs, Timestamps: true, QueueBytes: 256 << 20})
	r, w := pipe(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	c := a.Attach(1, r, nil, nil)
	waitDone(b, "writer", writeAsync(b, w, data.Bytes()))
	finish(b, a, c, w)
	cpu := cpuTime(b) - cpu0
	b.StopTimer()
	if err := fs.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(cpu.Milliseconds())*100000/float64(b.N), "cpu-ms/100k-lines")
	b.ReportMetric(float64(a.Dropped())/float64(b.N), "dropped/line")
}
