package testenv

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// pollInterval is how often WaitFor and AssertNoLeftovers look again.
const pollInterval = 15 * time.Millisecond

// WaitFor calls cond at once and then every 15 ms until it returns true, and
// fails the test (t.Fatalf, so call it from the test's goroutine) naming what
// when it is still false after timeout. cond should be quick and must not
// block for long: it runs on the caller's goroutine.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Poll(timeout, cond) {
		t.Fatalf("testenv: timed out after %v waiting for %s", timeout, what)
	}
}

// WaitForState is WaitFor with a cond that also describes the state it saw,
// which the failure message quotes (the last description).
func WaitForState(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, state string)) {
	t.Helper()
	var last string
	if !Poll(timeout, func() bool {
		var ok bool
		ok, last = cond()
		return ok
	}) {
		t.Fatalf("testenv: timed out after %v waiting for %s; last: %s", timeout, what, last)
	}
}

// Poll calls cond at once and then every 15 ms and reports whether it
// returned true within timeout; cond is asked once more at the deadline.
// Unlike WaitFor it does not fail the test.
func Poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		if cond() {
			return true
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
	}
}

// httpTimeout bounds a whole Get or GetUnix (connect, request, body): a
// fresh connection queued behind 16 loaded keep-alive connections to two
// sync workers, on a 2-core machine that runs two test packages at once,
// can wait over 2 s for its answer without anything being wrong.
const httpTimeout = 5 * time.Second

// maxBody caps how much of a response body Get and GetUnix read.
const maxBody = 1 << 20

// Get sends GET path to the HTTP server at addr (host:port) and returns the
// status code and body. Everything, the body included, must finish within
// httpTimeout (5 s).
// Connections are not kept alive (a sync Gunicorn worker serves one
// connection at a time) and no proxy from the environment is used.
func Get(addr, path string) (status int, body string, err error) {
	var d net.Dialer
	return get("http://"+addr+path, func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "tcp", addr)
	})
}

// GetUnix is Get over the Unix socket sockPath; the request's Host is
// "localhost".
func GetUnix(sockPath, path string) (status int, body string, err error) {
	var d net.Dialer
	status, body, err = get("http://localhost"+path, func(ctx context.Context, _, _ string) (net.Conn, error) {
		return d.DialContext(ctx, "unix", sockPath)
	})
	if err != nil {
		return status, body, fmt.Errorf("over %s: %w", sockPath, err)
	}
	return status, body, nil
}

func get(url string, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (int, string, error) {
	client := &http.Client{
		Timeout: httpTimeout,
		Transport: &http.Transport{
			DialContext:       dial,
			DisableKeepAlives: true,
		},
	}
	resp, err := client.Get(url)
	if err != nil {
		return 0, "", fmt.Errorf("GET %s: %w", url, err)
	}
	b, readErr := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	closeErr := resp.Body.Close()
	if readErr != nil {
		return resp.StatusCode, string(b), fmt.Errorf("GET %s: reading body: %w", url, readErr)
	}
	if closeErr != nil {
		return resp.StatusCode, string(b), fmt.Errorf("GET %s: closing body: %w", url, closeErr)
	}
	return resp.StatusCode, string(b), nil
}

// ShortTempDir returns a new directory under os.TempDir with a short name,
// removed when the test ends: for Unix socket paths, which must fit in 108
// bytes where t.TempDir's (named after the test) may not.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "te")
	if err != nil {
		t.Fatalf("testenv: making short temporary directory: %v", err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("testenv: removing %s: %v", dir, err)
		}
	})
	return dir
}
