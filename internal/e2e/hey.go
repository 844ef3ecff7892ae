package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/heyout"
	"github.com/gunisup/supervisor/internal/testenv"
)

// heyLongest is the -z a HeyRun's hey is started with: the load ends at
// Stop, and by itself only after this, should the test never call Stop.
const heyLongest = 10 * time.Minute

// HeyRun is hey running in the background until Stop: a load that lasts as
// long as the scenario it covers.
type HeyRun struct {
	args  []string
	cmd   *exec.Cmd
	out   *testenv.SyncBuffer
	start time.Time
	done  chan struct{}
	err   error
}

// StartHey starts hey with args (e.g. "-c", "16", url; without -z or -n,
// which StartHey sets) in the background, failing the test if it cannot.
// The test's clean-up kills a hey that Stop did not end.
func StartHey(t testing.TB, args ...string) *HeyRun {
	t.Helper()
	h := &HeyRun{args: args, out: &testenv.SyncBuffer{}, done: make(chan struct{})}
	h.cmd = exec.Command("hey", append([]string{"-z", heyLongest.String()}, args...)...)
	h.cmd.Stdout, h.cmd.Stderr = h.out, h.out
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("e2e: start hey %s: %v", strings.Join(args, " "), err)
	}
	h.start = time.Now()
	go func() {
		h.err = h.cmd.Wait()
		close(h.done)
	}()
	t.Cleanup(func() {
		_ = h.cmd.Process.Kill() // ended by Stop already, or the test failed first
		<-h.done
	})
	return h
}

// Done is closed once hey has exited.
func (h *HeyRun) Done() <-chan struct{} { return h.done }

// Elapsed is how long hey has run.
func (h *HeyRun) Elapsed() time.Duration { return time.Since(h.start) }

// Stop lets hey run until atLeast after its start (a fixed-length load, as
// -z gives), then interrupts it: on SIGINT hey lets each request in flight
// finish and prints its summary, which Stop parses. It waits up to a minute
// for hey to exit, then kills it and returns an error; an exit status other
// than 0 is an error too, with hey's output.
func (h *HeyRun) Stop(atLeast time.Duration) (Hey, error) {
	if rest := atLeast - h.Elapsed(); rest > 0 {
		select {
		case <-h.done:
		case <-time.After(rest): // the load's length, not a wait for a condition
		}
	}
	_ = h.cmd.Process.Signal(os.Interrupt) // it may have exited: done tells
	select {
	case <-h.done:
	case <-time.After(time.Minute):
		_ = h.cmd.Process.Kill() // last resort; its summary is lost
		<-h.done
		return Hey{Output: h.out.String()}, fmt.Errorf("hey %s: still running a minute after SIGINT", strings.Join(h.args, " "))
	}
	out := h.out.String()
	r := Hey{Summary: heyout.Parse(out), Output: out}
	if h.err != nil {
		return r, fmt.Errorf("hey %s: %w\n%s", strings.Join(h.args, " "), h.err, out)
	}
	return r, nil
}
