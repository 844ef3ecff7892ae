package core

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// answerWait is how long a connection made while no generation serves may
// wait for its answer: a boot, a backoff and a loaded machine.
const answerWait = 40 * time.Second

// askEarly connects to network addr, retrying while nothing listens there
// yet (until answerWait), sends GET / and returns the status line, or an
// error naming how long it waited.
func askEarly(network, addr string) (string, error) {
	start := time.Now()
	var c net.Conn
	if !testenv.Poll(answerWait, func() bool {
		var err error
		c, err = net.DialTimeout(network, addr, answerWait)
		return err == nil
	}) {
		return "", fmt.Errorf("%s %s: no connect within %s", network, addr, answerWait)
	}
	defer c.Close()
	if err := c.SetDeadline(start.Add(answerWait)); err != nil {
		return "", err
	}
	if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
		return "", fmt.Errorf("%s %s: send: %w", network, addr, err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("%s %s: no answer after %s: %w", network, addr, time.Since(start).Round(time.Millisecond), err)
	}
	return strings.TrimSpace(line), nil
}

// askMany runs askEarly n times at once on TCP addr and once on the Unix
// path, and fails the test for every connection not answered 200.
func askMany(t *testing.T, when, addr, path string, n int) {
	t.Helper()
	errs := make(chan error, n+1)
	start := time.Now()
	var slowest atomicDuration
	one := func(network, a string) {
		line, err := askEarly(network, a)
		slowest.max(time.Since(start))
		if err == nil && !strings.Contains(line, " 200 ") {
			err = fmt.Errorf("%s %s: %q", network, a, line)
		}
		errs <- err
	}
	for range n {
		go one("tcp", addr)
	}
	go one("unix", path)
	var failed []error
	for range n + 1 {
		if err := <-errs; err != nil {
			failed = append(failed, err)
		}
	}
	t.Logf("%s: %d connections, the last answered after %s", when, n+1, slowest.get().Round(time.Millisecond))
	if len(failed) > 0 {
		t.Errorf("%s: %d of %d connections unanswered: %v", when, len(failed), n+1, errors.Join(failed...))
	}
}

// freePort returns a loopback TCP address nobody listens on now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// TestConnectionsBeforeServingAnswered: connections made while no
// generation serves, from the moment the supervisor binds web's listeners
// during its first start (web's import takes 2 s) and right after its only
// master and workers are killed, are answered once a generation serves; none stays in
// a socket nobody accepts from.
func TestConnectionsBeforeServingAnswered(t *testing.T) {
	addr := freePort(t)
	cfg := e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{
		{Listen: []string{"tcp://" + addr, "unix://@DIR@/web.sock"}},
	}}.String()
	s := e2e.Start(t, e2e.Options{Config: cfg, NoWait: true, Setup: func(dir string) {
		if err := os.MkdirAll(filepath.Join(dir, "app"), 0o755); err != nil {
			t.Fatal(err)
		}
		testenv.WriteRelease(t, filepath.Join(dir, "app"), testenv.Release{Version: "1", BootDelay: 2 * time.Second})
	}})
	path := filepath.Join(s.Dir, "web.sock")
	askMany(t, "first start", addr, path, 16)

	app := s.WaitState("web", control.StateRunning, 60*time.Second)
	workers := e2e.GunicornChildren(e2e.ProcTable(), app.MasterPID)
	for _, pid := range append([]int{app.MasterPID}, workers...) {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
	}
	askMany(t, "after the master's kill", addr, path, 16)
}

// atomicDuration is the largest duration given to max.
type atomicDuration struct {
	mu sync.Mutex
	d  time.Duration
}

func (a *atomicDuration) max(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.d = max(a.d, d)
}

func (a *atomicDuration) get() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.d
}
