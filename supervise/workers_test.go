package supervise

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/status"
)

// TestScaleOwner: the face an owner shows its worker controller serves
// nothing before the app runs, then the tracked generation's master, and
// delivers a signal to that master through the owner, returning its PID.
func TestScaleOwner(t *testing.T) {
	r := startRig(t, testApp())
	o := scaleOwner{r.a}
	if pid, _ := o.Serving(); pid != 0 {
		t.Fatalf("Serving before the start: master %d; want 0", pid)
	}
	if err := r.do(startMsg{newCall()}); err != nil {
		t.Fatal(err)
	}
	g := r.next()
	g.mu.Lock()
	g.stubborn = true // TTIN does not end a master
	g.mu.Unlock()
	g.verdict <- nil
	s := r.waitState(status.Running)
	if pid, _ := o.Serving(); pid != s.MasterPID || pid == 0 {
		t.Fatalf("Serving while running: master %d; want %d", pid, s.MasterPID)
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	pid, err := o.SignalMaster(ctx, syscall.SIGTTIN)
	if err != nil {
		t.Fatal(err)
	}
	if pid != s.MasterPID {
		t.Fatalf("SignalMaster went to %d; want the master, %d", pid, s.MasterPID)
	}
	g.mu.Lock()
	got := append([]syscall.Signal(nil), g.signals...)
	g.mu.Unlock()
	if len(got) != 1 || got[0] != syscall.SIGTTIN {
		t.Fatalf("the master received %v; want one TTIN", got)
	}
}
