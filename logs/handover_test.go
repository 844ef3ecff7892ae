package logs

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
)

func texts(lines []Line) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = l.Text
	}
	return out
}

// TestRecentPreloadSince: Recent keeps the newest lines within its byte
// bound (at least one), Preload makes them the history of another App
// (not sent to its sink), and Query.Since keeps the lines read from then.
func TestRecentPreloadSince(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var sink strings.Builder
	old := NewApp("web", Options{})
	defer old.Close(context.Background())
	var batch []Line
	for i, txt := range []string{"aaaa", "bbbb", "cccc", "dddd"} {
		batch = append(batch, Line{Time: t0.Add(time.Duration(i) * time.Second), App: "web", Gen: 1, Stream: Stdout, Text: txt})
	}
	old.ring.add(batch)

	tests := []struct {
		max  int
		want []string
	}{
		{1 << 20, []string{"aaaa", "bbbb", "cccc", "dddd"}},
		{8, []string{"cccc", "dddd"}},
		{9, []string{"cccc", "dddd"}},
		{1, []string{"dddd"}},
	}
	for _, tt := range tests {
		if got := texts(old.Recent(tt.max)); !slices.Equal(got, tt.want) {
			t.Errorf("Recent(%d) = %q, want %q", tt.max, got, tt.want)
		}
	}

	next := NewApp("web", Options{Sink: &sink})
	next.Preload(old.Recent(1 << 20))
	next.ring.add([]Line{{Time: t0.Add(10 * time.Second), Gen: 2, Stream: Stderr, Text: "new"}})
	if got, want := texts(next.Lines(Query{})), []string{"aaaa", "bbbb", "cccc", "dddd", "new"}; !slices.Equal(got, want) {
		t.Errorf("after Preload: %q, want %q", got, want)
	}
	if got, want := texts(next.Lines(Query{Since: t0.Add(2 * time.Second)})), []string{"cccc", "dddd", "new"}; !slices.Equal(got, want) {
		t.Errorf("Since t0+2s: %q, want %q", got, want)
	}
	if err := next.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if sink.Len() != 0 {
		t.Errorf("preloaded lines reached the sink: %q", sink.String())
	}
}
