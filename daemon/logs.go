package daemon

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/logs"
)

// followBuffer is the number of lines a `supctl logs -f` client may fall
// behind before its follow is ended (it is told so in a last line).
const followBuffer = 4096

// newLogger returns the supervisor's own logger writing to w at INFO in
// format (config.LogFormatText or config.LogFormatJSON).
func newLogger(format string, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if format == config.LogFormatJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// OpenLogs implements control.Logs from the app's in-memory log.
func (b backend) OpenLogs(app string, q control.LogQuery) ([]control.LogLine, <-chan control.LogLine, func(), error) {
	l, err := b.m.Log(app)
	if err != nil {
		return nil, nil, nil, wireError(err)
	}
	recent, live, stop := openLog(l, q)
	return recent, live, stop, nil
}

// openLog returns l's recent lines matching q and, with q.Follow, a channel
// of every later one and the function that ends the follow (see
// control.Logs.OpenLogs).
func openLog(l *logs.App, q control.LogQuery) ([]control.LogLine, <-chan control.LogLine, func()) {
	lq := logs.Query{N: q.N, Since: q.Since}
	if q.Stderr {
		lq.Stream = logs.Stderr
	}
	if !q.Follow {
		return wireLines(l.Lines(lq)), nil, func() {}
	}
	recent, f := l.Follow(lq, followBuffer)
	live := make(chan control.LogLine)
	done := make(chan struct{})
	var once sync.Once
	stop := func() { once.Do(func() { close(done); f.Close() }) }
	go relayFollow(f, live, done)
	return wireLines(recent), live, stop
}

// relayFollow passes f's lines to live until f ends or done is closed, then
// closes live. A follower ended for lagging gets a last line saying so.
func relayFollow(f *logs.Follower, live chan<- control.LogLine, done <-chan struct{}) {
	defer close(live)
	for l := range f.C {
		select {
		case live <- wireLine(&l):
		case <-done:
			return
		}
	}
	if f.Lagged() {
		select {
		case live <- control.LogLine{Stream: logs.Notice.String(), Text: "follow ended: this client fell behind and lines were lost"}:
		case <-done:
		}
	}
}

// ReopenLog implements control.Logs.
func (b backend) ReopenLog(_ context.Context, app string) error {
	return wireError(b.m.ReopenLog(app))
}

func wireLines(lines []logs.Line) []control.LogLine {
	out := make([]control.LogLine, len(lines))
	for i := range lines {
		out[i] = wireLine(&lines[i])
	}
	return out
}

func wireLine(l *logs.Line) control.LogLine {
	return control.LogLine{Time: l.Time, Gen: l.Gen, Stream: l.Stream.String(), Text: l.Text, Part: l.Part, More: l.More}
}
