package supervise

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/testenv"
)

// TestPythonTraceback: the last traceback is cut from its header line on,
// its exception line found; a long one keeps its header and its end; without
// a traceback the last lines are returned.
func TestPythonTraceback(t *testing.T) {
	first := []string{"Traceback (most recent call last):", `  File "a.py", line 1, in <module>`, "ValueError: first"}
	second := []string{"Traceback (most recent call last):", `  File "app.py", line 9, in <module>`, `    raise RuntimeError("x")`, "RuntimeError: x", "[INFO] Shutting down: Master"}
	tb, exc := pythonTraceback(append(append([]string{"[INFO] Booting worker"}, first...), second...))
	if !reflect.DeepEqual(tb, second) || exc != "RuntimeError: x" {
		t.Errorf("got %q, %q; want the second traceback and RuntimeError: x", tb, exc)
	}

	long := []string{"Traceback (most recent call last):"}
	for i := range 100 {
		long = append(long, fmt.Sprintf("  frame %d", i))
	}
	long = append(long, "KeyError: 'k'")
	tb, exc = pythonTraceback(long)
	if len(tb) != tracebackMax || tb[0] != long[0] || tb[1] != "..." || tb[len(tb)-1] != "KeyError: 'k'" || exc != "KeyError: 'k'" {
		t.Errorf("long traceback cut to %d lines %q..%q, exception %q", len(tb), tb[:2], tb[len(tb)-1], exc)
	}

	var plain []string
	for i := range 30 {
		plain = append(plain, fmt.Sprintf("line %d", i))
	}
	tb, exc = pythonTraceback(plain)
	if !reflect.DeepEqual(tb, plain[30-tracebackPlain:]) || exc != "" {
		t.Errorf("without a traceback got %q, %q; want the last %d lines", tb, exc, tracebackPlain)
	}
}

// attach tracks a capture until both its streams end, and one with no
// stream at all is done at once and never tracked.
func TestAttachTracksUntilDone(t *testing.T) {
	l, err := newAppLog(&config.App{Name: "web"}, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = closeAppLogs(map[string]*appLog{"web": l}, time.Second) })

	none := l.attach(1, nil, nil)
	<-none.capture.Done()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := l.attach(2, r, nil)
	l.mu.Lock()
	_, tracked := l.captures[out.capture]
	n := len(l.captures)
	l.mu.Unlock()
	if !tracked || n != 1 {
		t.Fatalf("after attach: tracked %v, %d captures; want the piped one only", tracked, n)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	<-out.capture.Done()
	testenv.WaitFor(t, 10*time.Second, "the capture untracked", func() bool {
		l.mu.Lock()
		defer l.mu.Unlock()
		return len(l.captures) == 0
	})
}
