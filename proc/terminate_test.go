package proc

import (
	"bufio"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// startHelperReady starts the test binary in mode and waits until it
// printed its first line (its signal handling is set up).
func startHelperReady(t *testing.T, r *Reaper, mode string) (int, <-chan ExitInfo) {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	pid, ch, err := r.ForkExec(Spec{Argv: []string{testBinary(t)}, Env: testHelperEnv(mode), Dir: t.TempDir()}, p[1], p[1])
	unix.Close(p[1])
	if err != nil {
		unix.Close(p[0])
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(p[0]), "helper output")
	defer f.Close()
	if _, err := bufio.NewReader(f).ReadString('\n'); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL) // failing anyway
		t.Fatalf("helper %s: %v", mode, err)
	}
	return pid, ch
}

// TestTerminate: a child that stops on TERM is gone before grace, one that
// ignores TERM is KILLed after grace; both exits reach the reaper.
func TestTerminate(t *testing.T) {
	r := NewReaper()
	defer r.Close()
	for _, tt := range []struct {
		mode   string
		signal syscall.Signal
		min    time.Duration
		grace  time.Duration
	}{{"block", 0, 0, 30 * time.Second}, {"ignore-term", syscall.SIGKILL, 300 * time.Millisecond, 300 * time.Millisecond}} {
		t.Run(tt.mode, func(t *testing.T) {
			pid, ch := startHelperReady(t, r, tt.mode)
			list := func() []int {
				return OwnChildren(func(p, _ int) bool { return p == pid })
			}
			if got := list(); !slices.Equal(got, []int{pid}) {
				t.Fatalf("OwnChildren = %v, want [%d]", got, pid)
			}
			start := time.Now()
			if left := Terminate(list, tt.grace, 10*time.Millisecond); left != nil {
				t.Errorf("Terminate left %v", left)
			}
			took := time.Since(start)
			info := testWaitExit(t, ch, 30*time.Second, tt.mode)
			t.Logf("%s: %s after %s", tt.mode, info, took)
			if info.Signal != int(tt.signal) || took < tt.min {
				t.Errorf("%s: exit %s after %s; want signal %d, at least %s", tt.mode, info, took, tt.signal, tt.min)
			}
		})
	}
}
