package status

import (
	"encoding/json"
	"testing"
)

// TestStateText: each state's name is the one supctl, /v1 and the metrics
// labels show, and it reads back as the same state; other text is an error
// that leaves the state as it was.
func TestStateText(t *testing.T) {
	want := map[State]string{
		Stopped: "stopped", Starting: "starting", Running: "running",
		Backoff: "backoff", Stopping: "stopping", Failed: "failed",
	}
	if len(States) != len(want) {
		t.Fatalf("States has %d states, want %d", len(States), len(want))
	}
	for _, st := range States {
		b, err := json.Marshal(st)
		if err != nil || string(b) != `"`+want[st]+`"` {
			t.Errorf("json.Marshal(%d) = %s, %v; want %q", int(st), b, err, want[st])
		}
		var back State
		if err := json.Unmarshal(b, &back); err != nil || back != st {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", b, back, err, st)
		}
	}
	if s := State(len(States)).String(); s != "unknown" {
		t.Errorf("String of an out-of-range state = %q, want unknown", s)
	}
	st := Running
	if err := st.UnmarshalText([]byte("Running")); err == nil || st != Running {
		t.Errorf("UnmarshalText(Running) = %v, state %v; want an error and running kept", err, st)
	}
}
