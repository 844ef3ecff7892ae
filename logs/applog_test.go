package logs

import (
	"io"
	"log/slog"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/testenv"
)

// Track tracks a capture until both its streams end, and one with no
// stream at all is done at once and never tracked.
func TestAttachTracksUntilDone(t *testing.T) {
	l, err := OpenApp(&config.App{Name: "web"}, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = CloseApps(time.Second, l) })

	none := l.Track(1, nil, nil)
	<-none.capture.Done()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	out := l.Track(2, r, nil)
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

// TestCloseAppsSkipsNone: a nil log among those CloseApps ends is none to
// close; the others close.
func TestCloseAppsSkipsNone(t *testing.T) {
	l, err := OpenApp(&config.App{Name: "web"}, io.Discard, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := CloseApps(time.Second, nil, l, nil); err != nil {
		t.Fatalf("CloseApps(nil, log, nil) = %v, want nil", err)
	}
}

// TestCrashTail: the tail is the crashed generation's stderr only, its
// last n lines; none before a crash is noted or after an expected exit.
func TestCrashTail(t *testing.T) {
	l, err := OpenApp(&config.App{Name: "web"}, io.Discard, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = CloseApps(time.Second, l) })
	l.Preload([]Line{
		{Gen: 2, Stream: Stderr, Text: "old"},
		{Gen: 3, Stream: Stderr, Text: "Traceback (most recent call last):"},
		{Gen: 3, Stream: Stdout, Text: "serving"},
		{Gen: 3, Stream: Stderr, Text: "ValueError: boom"},
	})
	if got := l.CrashTail(10); got != nil {
		t.Errorf("tail before a crash: %q", got)
	}
	l.NoteCrash(3)
	if got := l.CrashTail(1); !slices.Equal(got, []string{"ValueError: boom"}) {
		t.Errorf("CrashTail(1) = %q", got)
	}
	if got := l.CrashTail(10); !slices.Equal(got, []string{"Traceback (most recent call last):", "ValueError: boom"}) {
		t.Errorf("CrashTail(10) = %q", got)
	}
	l.NoteCrash(0)
	if got := l.CrashTail(10); got != nil {
		t.Errorf("tail after an expected exit: %q", got)
	}
}
