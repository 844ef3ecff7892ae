package supctl

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
)

func TestLogQuery(t *testing.T) {
	now := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		flags map[string]string
		want  control.LogQuery
		err   string
	}{
		{map[string]string{}, control.LogQuery{N: 100}, ""},
		{map[string]string{"n": "5", "f": ""}, control.LogQuery{N: 5, Follow: true}, ""},
		{map[string]string{"n": "0", "f": ""}, control.LogQuery{N: 100, NoHistory: true, Follow: true}, ""},
		{map[string]string{"n": "all", "stderr": ""}, control.LogQuery{Stderr: true}, ""},
		{map[string]string{"since": "10m"}, control.LogQuery{Since: now.Add(-10 * time.Minute)}, ""},
		{map[string]string{"since": "2026-12-06T23:00:00Z", "n": "3"}, control.LogQuery{N: 3, Since: time.Date(2026, 12, 6, 23, 0, 0, 0, time.UTC)}, ""},
		{map[string]string{"n": "-1"}, control.LogQuery{}, `-n wants a number of lines >= 0 or all, got "-1"`},
		{map[string]string{"since": "yesterday"}, control.LogQuery{}, `--since wants a duration`},
	}
	for _, tt := range tests {
		got, err := logQuery(tt.flags, now)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("logQuery(%v) error %v, want %q", tt.flags, err, tt.err)
			}
			continue
		}
		if err != nil || !got.Since.Equal(tt.want.Since) {
			t.Errorf("logQuery(%v) = %+v, %v; want %+v", tt.flags, got, err, tt.want)
		}
		got.Since, tt.want.Since = time.Time{}, time.Time{}
		if got != tt.want {
			t.Errorf("logQuery(%v) = %+v, want %+v", tt.flags, got, tt.want)
		}
	}
}

// appLogs serves two lines of web and one of worker, at interleaved times.
type appLogs struct{}

func (appLogs) OpenLogs(app string, q control.LogQuery) ([]control.LogLine, <-chan control.LogLine, func(), error) {
	if err := check(app); err != nil {
		return nil, nil, nil, err
	}
	t0 := time.Date(2026, 12, 7, 1, 0, 0, 0, time.UTC)
	lines := map[string][]control.LogLine{
		"web":    {{Time: t0, Gen: 1, Stream: "stdout", Text: "w1"}, {Time: t0.Add(2 * time.Second), Gen: 1, Stream: "stderr", Text: "w2"}},
		"worker": {{Time: t0.Add(time.Second), Gen: 3, Stream: "stdout", Text: "k1"}},
	}[app]
	return lines, nil, func() {}, nil
}

func (appLogs) ReopenLog(context.Context, string) error { return nil }

// TestLogsAllApps: `supctl logs` and `supctl logs all` interleave every
// app's lines by time, each naming its app; -n 0 prints no history.
func TestLogsAllApps(t *testing.T) {
	dir, err := os.MkdirTemp("", "supctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "c.sock")
	srv := &control.Server{Backend: twoApps{}, Logs: appLogs{}}
	if err := srv.Listen(sock, -1); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	t.Cleanup(func() {
		srv.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	t.Setenv("SUPCTL_SOCKET", sock)
	want := "2026-12-07T01:00:00.000Z web[1] stdout: w1\n" +
		"2026-12-07T01:00:01.000Z worker[3] stdout: k1\n" +
		"2026-12-07T01:00:02.000Z web[1] stderr: w2\n"
	for _, args := range [][]string{{"logs"}, {"logs", "all"}, {"logs", "web", "worker"}} {
		var out, errb bytes.Buffer
		if err := Run(args, &out, &errb); err != nil {
			t.Fatalf("%v: %v (%s)", args, err, errb.String())
		}
		if out.String() != want {
			t.Errorf("%v:\n%s\nwant\n%s", args, out.String(), want)
		}
	}
	var out, errb bytes.Buffer
	if err := Run([]string{"logs", "web", "-n", "0"}, &out, &errb); err != nil || out.Len() != 0 {
		t.Errorf("logs web -n 0: %v, printed %q; want nothing", err, out.String())
	}
}

// twoApps is backend with both apps in its status.
type twoApps struct{ backend }

func (twoApps) Status() []control.AppStatus {
	return []control.AppStatus{{Name: "web"}, {Name: "worker"}}
}
