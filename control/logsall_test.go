package control

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// timedBackend serves lines of web and worker at set times, and per app a
// live channel.
type timedBackend struct {
	backend
	t0   time.Time
	live map[string]chan LogLine
	mu   sync.Mutex
	qs   []LogQuery
}

func (b *timedBackend) OpenLogs(app string, q LogQuery) ([]LogLine, <-chan LogLine, func(), error) {
	if err := b.check(app); err != nil {
		return nil, nil, nil, err
	}
	b.mu.Lock()
	b.qs = append(b.qs, q)
	b.mu.Unlock()
	at := map[string][]int{"web": {1, 3, 5}, "worker": {2, 4}}[app]
	var recent []LogLine
	for _, s := range at {
		recent = append(recent, LogLine{Time: b.t0.Add(time.Duration(s) * time.Second), Stream: "stdout", Text: app})
	}
	if q.N > 0 && len(recent) > q.N {
		recent = recent[len(recent)-q.N:]
	}
	if !q.Follow {
		return recent, nil, func() {}, nil
	}
	return recent, b.live[app], func() {}, nil
}

func (b *timedBackend) ReopenLog(context.Context, string) error { return nil }

// TestLogsAll: the lines of every app (or of those named) come merged by
// time, each naming its app, the n most recent over all; history=false
// sends none; a follow interleaves the apps' live lines; an unknown app is
// not_found.
func TestLogsAll(t *testing.T) {
	b := &timedBackend{t0: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), live: map[string]chan LogLine{"web": make(chan LogLine), "worker": make(chan LogLine)}}
	_, path := serve(t, b)
	c := NewClient(path)
	ctx := context.Background()
	read := func(apps []string, q LogQuery) []string {
		t.Helper()
		var got []string
		if err := c.LogsAll(ctx, apps, q, func(l LogLine) { got = append(got, l.App+"@"+l.Time.Format("05")) }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	tests := []struct {
		apps []string
		q    LogQuery
		want []string
	}{
		{nil, LogQuery{}, []string{"web@01", "worker@02", "web@03", "worker@04", "web@05"}},
		{nil, LogQuery{N: 3}, []string{"web@03", "worker@04", "web@05"}},
		{[]string{"worker"}, LogQuery{}, []string{"worker@02", "worker@04"}},
		{nil, LogQuery{NoHistory: true}, nil},
	}
	for _, tt := range tests {
		if got := read(tt.apps, tt.q); !slices.Equal(got, tt.want) {
			t.Errorf("LogsAll(%v, %+v) = %v, want %v", tt.apps, tt.q, got, tt.want)
		}
	}
	since := b.t0.Add(3 * time.Second)
	read(nil, LogQuery{Since: since})
	b.mu.Lock()
	last := b.qs[len(b.qs)-1]
	b.mu.Unlock()
	if !last.Since.Equal(since) {
		t.Errorf("since reached the backend as %v, want %v", last.Since, since)
	}
	var ae *APIError
	if err := c.LogsAll(ctx, []string{"web", "nope"}, LogQuery{}, func(LogLine) {}); !errors.As(err, &ae) || ae.Code != CodeNotFound {
		t.Errorf("an unknown app: %v, want not_found", err)
	}

	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lines := make(chan LogLine, 16)
	done := make(chan error, 1)
	go func() {
		done <- c.LogsAll(fctx, nil, LogQuery{Follow: true, NoHistory: true}, func(l LogLine) { lines <- l })
	}()
	for _, app := range []string{"worker", "web", "worker"} {
		select {
		case b.live[app] <- LogLine{Stream: "stdout", Text: "live"}:
		case <-time.After(10 * time.Second):
			t.Fatalf("server does not take %s's live lines", app)
		}
		if l := recv(t, lines); l.App != app || l.Text != "live" {
			t.Fatalf("got %+v, want a live line of %s", l, app)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("LogsAll after cancel: %v", err)
	}
}
