package control

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// golden compares v's indented JSON (as the server and `supctl status
// --json` write it) with testdata/name, and decodes it back into a fresh T
// to check the round trip.
func golden[T any](t *testing.T, name string, v T) {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("%s changed; the wire format is a contract with every client:\ngot:\n%s\nwant:\n%s", name, buf.Bytes(), want)
	}
	var back T
	if err := json.Unmarshal(want, &back); err != nil {
		t.Fatalf("%s does not decode: %v", name, err)
	}
	again, err := json.MarshalIndent(back, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(append(again, '\n'), want) {
		t.Errorf("%s does not survive a round trip:\n%s", name, again)
	}
}

func TestWireGolden(t *testing.T) {
	at := time.Date(2026, 11, 29, 9, 30, 0, 0, time.UTC)
	status := StatusResponse{
		Supervisor: SupervisorInfo{PID: 1, Version: "1.4.0", Started: at, Config: "/etc/supervisor/supervisor.toml", Upgrades: 2, LastUpgrade: "ok: 1.3.0 -> 1.4.0", HTTP: "127.0.0.1:9321"},
		Apps: []AppStatus{{
			Name: "web", Kind: "gunicorn", State: StateRunning, Healthy: true, HealthChecked: true,
			MasterPID: 4242, WorkerPIDs: []int{4243, 4244}, Processes: 4, Generation: 3, Release: "/srv/web/releases/42",
			Started: at, Restarts: 1, LastExit: &Exit{Code: -1, Signal: 9, Time: at.Add(-time.Minute)},
			Listeners:    []Listener{{Address: "tcp://127.0.0.1:8000", Bound: "127.0.0.1:8000", Network: "tcp", Backlog: 2048, Steering: "bpf"}},
			LastReload:   &LastReload{Strategy: "swap", Result: "rolled_back", Reason: "new generation exited: exit 3", Started: at, Duration: 1500 * time.Millisecond},
			Reloads:      map[string]int{"ok": 4, "rolled_back": 1},
			StatsdBridge: true, StatsdAddr: "127.0.0.1:40000", LogDropped: 12,
		}, {
			Name: "worker", Kind: "command", State: StateBackoff, NextRestart: at.Add(4 * time.Second), Backoff: 4 * time.Second,
			LastExit: &Exit{Code: 3, Time: at}, Reloads: map[string]int{}, Message: "exited: exit 3",
			Traceback: []string{"Traceback (most recent call last):", "ModuleNotFoundError: No module named 'flask'"},
		}},
	}
	golden(t, "status.json", status)
	golden(t, "events.json", []Event{
		{Time: at, Phase: "starting generation 4"},
		{Time: at, Done: true, OK: true, Result: "ok", Duration: 2 * time.Second},
		{Time: at, Done: true, Result: "rolled_back", Error: "new generation exited: exit 3 (rolled back)", Code: CodeFailed, Tail: []string{"Traceback (most recent call last):", "RuntimeError: boom"}, Duration: time.Second},
	})
	golden(t, "error.json", ErrorResponse{Error: `start nope: no such app: "nope"`, Code: CodeNotFound})
	golden(t, "ok.json", OKResponse{OK: true, Message: "restart web: ok"})
	golden(t, "version.json", VersionResponse{Version: "1.4.0", PID: 1})
	golden(t, "logs.json", []LogLine{
		{Time: at, Gen: 3, Stream: "stdout", Text: "GET / 200"},
		{Time: at, Gen: 3, Stream: "stderr", Text: "xxxx", Part: 1, More: true},
		{Time: at, Gen: 3, Stream: "log", Text: "12 lines dropped: the log sink did not take them"},
	})
}

func TestExitString(t *testing.T) {
	for _, tc := range []struct {
		e    Exit
		want string
	}{
		{Exit{Code: 3}, "exit 3"},
		{Exit{Code: 0}, "exit 0"},
		{Exit{Code: -1, Signal: 9}, "signal 9 (SIGKILL)"},
		{Exit{Code: -1, Signal: 15}, "signal 15 (SIGTERM)"},
	} {
		if got := tc.e.String(); got != tc.want {
			t.Errorf("%+v.String() = %q, want %q", tc.e, got, tc.want)
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err    error
		status int
		code   Code
	}{
		{errors.New("boom"), 500, CodeFailed},
		{&Error{Code: CodeNotFound, Err: errors.New("no such app")}, 404, CodeNotFound},
		{&Error{Code: CodeBusy, Err: errors.New("busy")}, 409, CodeBusy},
		{&Error{Code: CodeNotRunning, Err: errors.New("not running")}, 409, CodeNotRunning},
		{&Error{Code: CodeBadRequest, Err: errors.New("bad")}, 400, CodeBadRequest},
	} {
		status, code := classify(tc.err)
		if status != tc.status || code != tc.code {
			t.Errorf("classify(%v) = %d %s, want %d %s", tc.err, status, code, tc.status, tc.code)
		}
	}
}
