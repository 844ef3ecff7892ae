package metrics

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/errinbox"
	"github.com/gunisup/supervisor/internal/testenv"
)

// errorsSource is a fixedSource that also yields error inbox counters.
type errorsSource struct {
	fixedSource
	counts map[string]errinbox.Counts
}

func (s *errorsSource) ErrorCounts() map[string]errinbox.Counts { return s.counts }

// TestErrorMetrics: a Source with error inboxes exports their counters as
// supervisor_app_exceptions_total{app,exception},
// supervisor_worker_timeouts_total{app}, supervisor_worker_killed_total{app,signal}
// and supervisor_error_inbox_dropped_lines_total{app} (their shape pinned by
// testdata/errors.golden, which contrib's checks read), and promtool finds
// nothing to say about them.
func TestErrorMetrics(t *testing.T) {
	in := errinbox.New(errinbox.Options{})
	tb := []string{"Traceback (most recent call last):", `  File "/srv/app/app.py", line 3, in boom`, "ValueError: x"}
	in.Record(tb, 1, time.Unix(0, 0))
	in.Record(tb, 1, time.Unix(1, 0))
	in.WorkerTimeout()
	in.WorkerKilled("SIGKILL")
	src := &errorsSource{counts: map[string]errinbox.Counts{"web": in.Counts(), "api": errinbox.New(errinbox.Options{}).Counts()}}
	m := New(src, Options{})
	body := scrape(t, m.Handler(nil), "/metrics", http.StatusOK)
	for _, want := range []string{
		`supervisor_app_exceptions_total{app="web",exception="ValueError"} 2`,
		`supervisor_worker_timeouts_total{app="web"} 1`,
		`supervisor_worker_timeouts_total{app="api"} 0`,
		`supervisor_worker_killed_total{app="web",signal="SIGKILL"} 1`,
		`supervisor_error_inbox_dropped_lines_total{app="api"} 0`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("scrape lacks %s", want)
		}
	}
	shape := exposedShape(scrape(t, m.Handler(nil), "/metrics?prefix=supervisor_app_exceptions_&prefix=supervisor_worker_&prefix=supervisor_error_inbox_", http.StatusOK))
	golden := filepath.Join("testdata", "errors.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(shape), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if want, err := os.ReadFile(golden); err != nil || shape != string(want) {
		t.Errorf("error series differ from %s (rerun with -update if intended; %v)\n--- got\n%s\n--- want\n%s", golden, err, shape, want)
	}
	cmd := exec.Command(testenv.Promtool(t), "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}
