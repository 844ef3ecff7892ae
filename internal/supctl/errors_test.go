package supctl

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
)

// inboxBackend is mixedBackend with error inboxes: web has two groups and
// worker counters, crashy none.
type inboxBackend struct{ mixedBackend }

func (inboxBackend) AppErrors(name string) (control.AppErrors, error) {
	if name != "web" {
		return control.AppErrors{Name: name, Groups: []control.ErrorGroup{}}, nil
	}
	at := time.Now().Add(-time.Hour)
	tb := func(typ string, line int) []string {
		return []string{"Traceback (most recent call last):", fmt.Sprintf(`  File "/srv/web/app.py", line %d, in boom`, line), "    raise " + typ + "()", typ + ": boom"}
	}
	return control.AppErrors{Name: "web", WorkerTimeouts: 2, WorkerKilled: map[string]uint64{"SIGKILL": 1}, Groups: []control.ErrorGroup{
		{Fingerprint: "aaaaaaaaaaaa", Exception: "KeyError", Message: "KeyError: boom", Where: "/srv/web/app.py:9 in boom", Count: 7, FirstSeen: at, LastSeen: at.Add(30 * time.Minute), Generation: 3, Traceback: tb("KeyError", 9)},
		{Fingerprint: "bbbbbbbbbbbb", Exception: "ValueError", Message: "ValueError: boom", Where: "/srv/web/app.py:5 in boom", Count: 2, FirstSeen: at, LastSeen: at, Generation: 2, Traceback: tb("ValueError", 5)},
	}}, nil
}

// TestErrorsCommand: supctl errors prints each group's count, type,
// generation and exception line (-v: its traceback) and the worker
// counters; --json is the API's answer; an unknown app exits 1.
func TestErrorsCommand(t *testing.T) {
	serveBackend(t, inboxBackend{mixedBackend{signals: make(chan unix.Signal, 1)}})
	run := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		err := Run(args, &out, &errb)
		return out.String(), exitcode.Code(err)
	}
	out, code := run("errors", "web")
	for _, want := range []string{"web: 2 exception groups", "7 x KeyError  generation 3", "at /srv/web/app.py:9 in boom", "    | KeyError: boom", "workers: 2 timed out, 1 killed by SIGKILL"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("errors web (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	if strings.Contains(out, "raise KeyError()") {
		t.Errorf("errors web without -v prints tracebacks:\n%s", out)
	}
	if out, _ := run("errors", "web", "-v"); !strings.Contains(out, `    |   File "/srv/web/app.py", line 9, in boom`) {
		t.Errorf("errors web -v lacks the traceback:\n%s", out)
	}
	out, _ = run("errors", "--json")
	var resp control.ErrorsResponse
	if err := json.Unmarshal([]byte(out), &resp); err != nil || len(resp.Apps) != 2 || resp.Apps[0].Groups[1].Count != 2 {
		t.Errorf("errors --json: %v\n%s", err, out)
	}
	if _, code := run("errors", "nope"); code != ExitFailed {
		t.Errorf("errors nope: exit %d, want %d", code, ExitFailed)
	}
	if out, code := run("errors", "--help"); code != 0 || !strings.Contains(out, errorsUsage) {
		t.Errorf("errors --help: exit %d\n%s", code, out)
	}
}
