package supervise

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/status"
)

// TestOwnerAwaitStart: a start's waiter is answered nil once the generation
// is ready, a *StartError naming the exit when it exits first, and at once
// for an app that is running or backing off.
func TestOwnerAwaitStart(t *testing.T) {
	cfg := testApp()
	cfg.Backoff.Initial, cfg.Backoff.Max = time.Hour, time.Hour // stays in backoff
	r := startRig(t, cfg)
	if err := r.do(startMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	g := r.next()
	w := r.async(awaitStartMsg{newCall()})
	g.verdict <- nil
	if err := reply(t, w); err != nil {
		t.Fatalf("ready start: %v", err)
	}
	if err := r.do(awaitStartMsg{newCall()}); err != nil {
		t.Fatalf("running app: %v", err)
	}

	if err := r.do(restartMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	g2 := r.next()
	w = r.async(awaitStartMsg{newCall()})
	g2.crash(3)
	err := reply(t, w)
	var se *StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "exit 3") {
		t.Fatalf("crashed start: %v, want a StartError naming exit 3", err)
	}
	r.waitState(status.Backoff)
	if err := r.do(awaitStartMsg{newCall()}); !errors.As(err, &se) || !strings.Contains(err.Error(), "exit 3") {
		t.Fatalf("app in backoff: %v, want its last start's failure", err)
	}
	r.checkInvariant()
}

// TestOwnerAwaitStartStopped: a stop answers a waiting start with an error.
func TestOwnerAwaitStartStopped(t *testing.T) {
	r := startRig(t, testApp())
	if err := r.do(startMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	r.next()
	w := awaitStartMsg{newCall()}
	if err := r.a.post(r.ctx, w); err != nil { // delivered before the stop
		t.Fatal(err)
	}
	stopped := r.async(stopMsg{call: newCall()})
	var se *StartError
	if err := reply(t, w.reply); !errors.As(err, &se) {
		t.Fatalf("start stopped while waiting: %v, want a StartError", err)
	}
	if err := reply(t, stopped); err != nil {
		t.Fatal(err)
	}
}
