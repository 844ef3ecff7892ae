package logs

import (
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	at := time.Date(2026, 11, 29, 10, 31, 16, 123456789, time.FixedZone("CET", 3600))
	cases := []struct {
		l    Line
		ts   bool
		want string
	}{
		{Line{Time: at, App: "web", Gen: 3, Stream: Stdout, Text: "GET /"}, false, "web[3] stdout: GET /\n"},
		{Line{Time: at, App: "web", Gen: 3, Stream: Stderr, Text: "boom"}, true, "2026-11-29T09:31:16.123Z web[3] stderr: boom\n"},
		{Line{Time: at, App: "web", Gen: 1, Stream: Stdout, Text: "aaaa", Part: 1, More: true}, false, "web[1] stdout (split 1): aaaa\n"},
		{Line{Time: at, App: "web", Gen: 1, Stream: Stdout, Text: "b", Part: 2}, false, "web[1] stdout (split 2, end): b\n"},
	}
	var w writer
	for _, tc := range cases {
		if got := string(AppendFormat(nil, &tc.l, tc.ts)); got != tc.want {
			t.Errorf("AppendFormat = %q, want %q", got, tc.want)
		}
		if got := string(w.format(nil, &tc.l, tc.ts)); got != tc.want {
			t.Errorf("writer.format = %q, want %q", got, tc.want)
		}
	}
}
