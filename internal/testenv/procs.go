package testenv

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// MarkKey is the environment variable MarkEnv returns.
const MarkKey = "SUPERVISOR_TEST_MARK"

// MarkEnv returns an environment variable (MarkKey and a random value unique
// to this call) for a test to put into the environment of the process it
// starts, so that every descendant inherits it and Leftovers can find them by
// the value. Processes that replace their whole environment escape the mark.
func MarkEnv(t testing.TB) (key, value string) {
	t.Helper()
	var b [12]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatalf("testenv: making a mark: %v", err)
	}
	return MarkKey, "m" + hex.EncodeToString(b[:])
}

// PassMark returns a supervisor configuration text that passes MarkKey on
// to every app ([supervisor] pass_env), since apps inherit only an
// allow-list of the supervisor's environment: pass_env is added under the
// [supervisor] header, or a [supervisor] table is put first when text has
// none (every later line then moves down by two).
func PassMark(text string) string {
	const header = "[supervisor]\n"
	pass := "pass_env = [\"" + MarkKey + "\"]\n"
	if i := strings.Index(text, header); i >= 0 && (i == 0 || text[i-1] == '\n') {
		return text[:i+len(header)] + pass + text[i+len(header):]
	}
	return header + pass + text
}

// Leftovers returns, in increasing order, the PIDs of live processes other
// than the caller whose environment (/proc/PID/environ, as the process was
// started) contains marker. Processes whose environ cannot be read (gone,
// kernel threads, no permission) and zombies are left out: a zombie runs
// nothing, and reaping it is its parent's business. A process in the middle
// of execve may briefly show an empty environment and be missed: poll (as
// AssertNoLeftovers does) rather than trust one look.
func Leftovers(marker string) []int {
	self := os.Getpid()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	m := []byte(marker)
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !bytes.Contains(env, m) {
			continue
		}
		if st, err := ReadStat(pid); err != nil || st.State == 'Z' || st.State == 'X' {
			continue
		}
		pids = append(pids, pid)
	}
	slices.Sort(pids)
	return pids
}

// AssertNoLeftovers waits up to timeout for every process marked with marker
// (see MarkEnv, Leftovers) to exit. If some are still alive then, it fails
// the test (t.Errorf), listing each one's pid and command line, and sends
// them SIGKILL so that later tests start clean; it then waits up to 5 s more
// for them to die. Killed processes whose parent is gone become zombies of
// the nearest subreaper (possibly the test binary); reaping them is left to it.
func AssertNoLeftovers(t testing.TB, marker string, timeout time.Duration) {
	t.Helper()
	var left []int
	if Poll(timeout, func() bool { left = Leftovers(marker); return len(left) == 0 }) {
		return
	}
	var report strings.Builder
	for _, pid := range left {
		cmd, err := Cmdline(pid)
		if err != nil {
			cmd = "(" + err.Error() + ")"
		}
		fmt.Fprintf(&report, "\n  pid %d: %s", pid, cmd)
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			fmt.Fprintf(&report, " (kill: %v)", err)
		}
	}
	t.Errorf("testenv: %d process(es) marked %s still running %v after the test; killed:%s",
		len(left), marker, timeout, report.String())
	if !Poll(5*time.Second, func() bool { left = Leftovers(marker); return len(left) == 0 }) {
		t.Errorf("testenv: processes %v marked %s survived SIGKILL for 5 s", left, marker)
	}
}
