package proc

import (
	"fmt"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// testHelperVar selects a helper mode when the test binary is re-executed as a
// fake child process (the TestMain pattern); testHelperCode is the exit code of
// mode "exit".
const (
	testHelperVar  = "PROC_TEST_HELPER"
	testHelperCode = "PROC_TEST_HELPER_CODE"
	testHelperPPID = "PROC_TEST_HELPER_PPID"
)

// TestMain runs the helper mode named by testHelperVar instead of the tests when
// set. The helper is the test binary's main program, so it is where the fake
// process chooses its exit status.
func TestMain(m *testing.M) {
	if mode := os.Getenv(testHelperVar); mode != "" {
		os.Exit(testRunHelper(mode))
	}
	m.Run()
}

// testRunHelper is a fake child process. Modes:
//
//	exit        exit with $PROC_TEST_HELPER_CODE
//	block       wait for SIGTERM, then exit 0 (SIGKILL ends it otherwise)
//	ignore-term ignore SIGTERM and wait for SIGKILL
//	orphaner    start a grandchild (mode "grandchild"), print its pid, exit 0
//	grandchild  wait until re-parented away from $PROC_TEST_HELPER_PPID, exit 3
func testRunHelper(mode string) int {
	switch mode {
	case "exit":
		n, err := strconv.Atoi(os.Getenv(testHelperCode))
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper exit:", err)
			return 100
		}
		return n
	case "block":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM)
		fmt.Println("ready")
		<-ch
		return 0
	case "ignore-term":
		signal.Ignore(syscall.SIGTERM)
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGUSR1) // never sent: SIGKILL ends it
		fmt.Println("ready")
		<-ch
		return 0
	case "orphaner":
		self, err := os.Executable()
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper orphaner:", err)
			return 100
		}
		env := testHelperEnv("grandchild", testHelperPPID+"="+strconv.Itoa(os.Getpid()))
		// Not waited for on purpose: it re-parents to the subreaper when we exit.
		pid, err := syscall.ForkExec(self, []string{self}, &syscall.ProcAttr{Env: env, Files: []uintptr{0, 1, 2}})
		if err != nil {
			fmt.Fprintln(os.Stderr, "helper orphaner:", err)
			return 100
		}
		fmt.Println(pid)
		return 0
	case "grandchild":
		return testGrandchild()
	}
	fmt.Fprintln(os.Stderr, "unknown helper mode", mode)
	return 100
}

// grandchild exits 3 once its original parent has exited, so that its exit
// is reaped by whoever adopted it. PR_SET_PDEATHSIG wakes it when the parent
// dies; the getppid check covers a parent that died before the prctl.
func testGrandchild() int {
	orig, err := strconv.Atoi(os.Getenv(testHelperPPID))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper grandchild:", err)
		return 100
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGUSR1)
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGUSR1), 0, 0, 0); err != nil {
		fmt.Fprintln(os.Stderr, "helper grandchild: prctl:", err)
		return 100
	}
	if os.Getppid() == orig {
		<-ch
	}
	return 3
}

// testListFDs returns "FD TARGET" for every open descriptor of pid (0: self),
// sorted by number, leaving out the descriptor that reads the directory. It
// uses raw system calls so that listing itself opens nothing else (os.Open
// would start Go's network poller).
func testListFDs(pid int) ([]string, error) {
	dir := "/proc/self/fd"
	if pid != 0 {
		dir = "/proc/" + strconv.Itoa(pid) + "/fd"
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	var names []string
	buf := make([]byte, 8192)
	for {
		n, err := unix.ReadDirent(dfd, buf)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", dir, err)
		}
		if n <= 0 {
			break
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
	var fds []int
	for _, name := range names {
		n, err := strconv.Atoi(name)
		if err != nil || (pid == 0 && n == dfd) {
			continue
		}
		fds = append(fds, n)
	}
	sort.Ints(fds)
	lines := make([]string, 0, len(fds))
	for _, n := range fds {
		target, err := os.Readlink(dir + "/" + strconv.Itoa(n))
		if err != nil {
			return nil, fmt.Errorf("readlink %s/%d: %w", dir, n, err)
		}
		lines = append(lines, strconv.Itoa(n)+" "+target)
	}
	return lines, nil
}

// testBinary returns the path of the running test binary (re-executed as
// helper children).
func testBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatalf("os.Executable: %v", err)
	}
	return self
}

// testHelperEnv returns the environment without any helper variable, plus
// the helper mode and extra KEY=VALUE pairs. Inherited helper variables must
// go: getenv returns the first of duplicate keys, so a helper starting a
// helper of another mode would otherwise start its own mode again, forever.
func testHelperEnv(mode string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PROC_TEST_HELPER") {
			env = append(env, kv)
		}
	}
	return append(append(env, testHelperVar+"="+mode), extra...)
}
