package core

import (
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// TestTopPiped: `supctl top` piped prints one table of the real
// supervisor's apps (state, RSS and restarts from GET /v1/top over the
// control socket; a Gunicorn app's workers), with no escape sequence, and
// exits 0.
func TestTopPiped(t *testing.T) {
	s := startWeb(t, logsHeader+`
[app.sleeper]
allow_root = true
kind = "process"
start_settle = "100ms"
command = ["/bin/sleep", "3600"]

[app.other]
allow_root = true
kind = "process"
autostart = false
command = ["/bin/sleep", "3600"]
`+e2e.App{}.String())
	s.WaitState("sleeper", control.StateRunning, 30*time.Second)
	s.WaitState("web", control.StateRunning, 30*time.Second)
	var out string
	rows := map[string][]string{}
	testenv.WaitFor(t, 30*time.Second, "web's 2 workers in top", func() bool {
		var code int
		out, code = s.SupctlRun("top", "--interval", "200ms")
		if code != 0 {
			t.Fatalf("supctl top: exit %d: %s", code, out)
		}
		for _, l := range strings.Split(strings.TrimSpace(out), "\n")[2:] {
			f := strings.Fields(l)
			rows[f[0]] = f
		}
		return len(rows["web"]) == 11 && rows["web"][4] == "2"
	})
	if strings.Contains(out, "\x1b") {
		t.Errorf("piped output has escape sequences: %q", out)
	}
	if f := rows["sleeper"]; len(f) != 11 || f[1] != "running" || !strings.HasSuffix(f[3], "M") && !strings.HasSuffix(f[3], "K") || f[10] != "0" {
		t.Errorf("sleeper's row %q: want running, an RSS, 0 restarts\n%s", f, out)
	}
	if f := rows["other"]; len(f) != 11 || f[1] != "stopped" {
		t.Errorf("other's row %q: want stopped\n%s", f, out)
	}
	if f := rows["web"]; len(f) != 11 || f[1] != "running" || !strings.HasSuffix(f[3], "M") {
		t.Errorf("web's row %q: want running, an RSS in MiB\n%s", f, out)
	}
	t.Logf("supctl top:\n%s", out)
}
