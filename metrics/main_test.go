package metrics

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/status"
)

// helperEnv selects a helper mode when the test binary re-executes itself:
//
//	sleep: print "ready <pid>" and block until stdin reaches EOF.
//	tree:  start a "sleep" child sharing our stdin, print "ready <child pid>",
//	       block until stdin reaches EOF, then wait for the child.
const helperEnv = "METRICS_TEST_HELPER"

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
	case "sleep":
		helperSleep()
		return
	case "tree":
		helperTree()
		return
	default:
		fmt.Fprintf(os.Stderr, "unknown %s=%q\n", helperEnv, mode)
		return
	}
	defer testenv.Cleanup()
	m.Run()
}

// helperSleep is a process that does nothing until its stdin closes.
func helperSleep() {
	fmt.Printf("ready %d\n", os.Getpid())
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "helper sleep: reading stdin: %v\n", err)
	}
}

// helperTree is a process with one child of its own; both end when the
// shared stdin closes.
func helperTree() {
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), helperEnv+"=sleep")
	child.Stdin = os.Stdin
	out, err := child.StdoutPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper tree: stdout pipe: %v\n", err)
		return
	}
	if err := child.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "helper tree: start child: %v\n", err)
		return
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		fmt.Fprintf(os.Stderr, "helper tree: child did not report: %v\n", err)
	} else {
		fmt.Print(line)
	}
	if _, err := io.Copy(io.Discard, os.Stdin); err != nil {
		fmt.Fprintf(os.Stderr, "helper tree: reading stdin: %v\n", err)
	}
	if err := child.Wait(); err != nil {
		fmt.Fprintf(os.Stderr, "helper tree: child: %v\n", err)
	}
}

// helperProc is a re-executed test binary started by startHelper.
type helperProc struct {
	PID      int // the helper itself
	Reported int // the pid it printed (its child's, in tree mode)
	// Stop ends it and waits for it (as the test's cleanup does).
	Stop func()
}

// startHelper re-executes the test binary in mode and waits until it is
// ready. Cleanup closes its stdin and waits for it; if it has not exited
// within 10 s its process group is killed.
func startHelper(tb testing.TB, mode string) helperProc {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatalf("helper %s: stdin pipe: %v", mode, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatalf("helper %s: stdout pipe: %v", mode, err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("helper %s: start: %v", mode, err)
	}
	exited := make(chan error, 1)
	var once sync.Once
	stop := func() {
		once.Do(func() {
			if err := stdin.Close(); err != nil {
				tb.Errorf("helper %s: close stdin: %v", mode, err)
			}
			go func() {
				// Wait closes stdout: read it to EOF (the helper's exit) first.
				_, derr := io.Copy(io.Discard, stdout)
				werr := cmd.Wait()
				if werr == nil && derr != nil {
					werr = fmt.Errorf("drain stdout: %w", derr)
				}
				exited <- werr
			}()
			select {
			case err := <-exited:
				if err != nil {
					tb.Errorf("helper %s (pid %d): %v", mode, cmd.Process.Pid, err)
				}
			case <-time.After(10 * time.Second):
				if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); err != nil {
					tb.Errorf("helper %s: kill group: %v", mode, err)
				}
				<-exited
				tb.Errorf("helper %s (pid %d) ignored stdin EOF for 10 s; killed", mode, cmd.Process.Pid)
			}
		})
	}
	tb.Cleanup(stop)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		stop()
		tb.Fatalf("helper %s: no ready line: %v", mode, err)
	}
	reported, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "ready "))
	if err != nil {
		stop()
		tb.Fatalf("helper %s: bad ready line %q: %v", mode, line, err)
	}
	return helperProc{PID: cmd.Process.Pid, Reported: reported, Stop: stop}
}

// fixedSource is a Source returning the same snapshots on every call.
type fixedSource struct {
	mu    sync.Mutex
	snaps []status.AppSnapshot
}

func (f *fixedSource) Snapshots() []status.AppSnapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]status.AppSnapshot, len(f.snaps))
	copy(out, f.snaps)
	return out
}

func (f *fixedSource) set(snaps ...status.AppSnapshot) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.snaps = snaps
}

// sample finds the series name{labels} in a Gather of reg. For counters and
// gauges it returns the value, for histograms the sample count.
func sample(tb testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) (float64, bool) {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !labelsMatch(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.GetCounter().GetValue(), true
			case m.Gauge != nil:
				return m.GetGauge().GetValue(), true
			case m.Histogram != nil:
				return float64(m.GetHistogram().GetSampleCount()), true
			case m.Untyped != nil:
				return m.GetUntyped().GetValue(), true
			}
		}
	}
	return 0, false
}

func labelsMatch(m *dto.Metric, want map[string]string) bool {
	got := make(map[string]string, len(m.GetLabel()))
	for _, lp := range m.GetLabel() {
		got[lp.GetName()] = lp.GetValue()
	}
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// histogram returns the series' histogram (nil if absent).
func histogram(tb testing.TB, reg prometheus.Gatherer, name string, labels map[string]string) *dto.Histogram {
	tb.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		tb.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, labels) {
				return m.GetHistogram()
			}
		}
	}
	return nil
}
