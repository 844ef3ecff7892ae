// Package health runs one check of one generation: an HTTP GET through the
// generation's own probe listener, a TCP connect, or a command. It knows
// nothing of processes: the caller says where to look and how to run commands.
package health

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/textutil"
)

// CommandRunner runs argv to completion and returns its output and exit code.
// The supervisor passes its reaper's runner: nothing else may wait for children.
type CommandRunner func(ctx context.Context, argv []string) (output []byte, exitCode int, err error)

// Checker runs the checks configured for one app.
type Checker struct {
	Spec   config.Health
	Run    CommandRunner
	client *http.Client
}

// New returns a checker for spec; run is used only for command checks.
func New(spec config.Health, run CommandRunner) *Checker {
	tr := &http.Transport{
		Proxy:             nil, // probes never go through a proxy
		DisableKeepAlives: true,
		DialContext:       (&net.Dialer{Timeout: spec.Timeout}).DialContext,
	}
	return &Checker{Spec: spec, Run: run, client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// Check runs the configured check once against addr (host:port of the
// generation's probe listener) within the configured timeout. It returns nil
// when the check passes, else an error saying what was seen.
func (c *Checker) Check(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, c.Spec.Timeout)
	defer cancel()
	switch {
	case c.Spec.Path != "":
		code, err := c.get(ctx, addr, c.Spec.Path)
		if err != nil {
			return err
		}
		if code < 200 || code > 299 {
			return &AnswerError{Msg: fmt.Sprintf("GET %s: status %d", c.Spec.Path, code)}
		}
		return nil
	case c.Spec.TCP:
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("tcp connect %s: %w", addr, err)
		}
		return conn.Close()
	case len(c.Spec.Command) > 0:
		if c.Run == nil {
			return errors.New("command check: no runner")
		}
		out, code, err := c.Run(ctx, c.Spec.Command)
		if err != nil {
			return fmt.Errorf("command %s: %w", c.Spec.Command[0], err)
		}
		if code != 0 {
			return &AnswerError{Msg: fmt.Sprintf("command %s: exit %d: %s", c.Spec.Command[0], code, textutil.FirstLine(out))}
		}
		return nil
	}
	return nil
}

// Answered reports whether any HTTP response comes back from addr: even a
// 404 proves that a worker holding that listener has booted the app.
func (c *Checker) Answered(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := c.get(ctx, addr, "/")
	return err
}

func (c *Checker) get(ctx context.Context, addr, path string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	host := c.Spec.Host
	if host == "" {
		host = "localhost"
	}
	req.Host = host
	req.Header.Set("User-Agent", "supervisor-health/1")
	resp, err := c.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64*1024)) // drain for a clean close; the body is not judged
	if err := resp.Body.Close(); err != nil {
		return 0, fmt.Errorf("GET %s: %w", path, err)
	}
	return resp.StatusCode, nil
}

// AnswerError is a check that got an answer, and the answer fails it: a
// non-2xx status or a command's non-zero exit.
type AnswerError struct{ Msg string }

func (e *AnswerError) Error() string { return e.Msg }

// AnsweredFailure reports whether err is a failure the checked generation answered:
// an *AnswerError, or a connection refused or reset (or closed before any
// response). A timeout, a cancellation or a command that could not be run
// is not an answer: it says nothing about the generation. A nil err is not
// a failure and returns false.
func AnsweredFailure(err error) bool {
	var a *AnswerError
	return errors.As(err, &a) || Refused(err) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// Refused reports whether err is a refused connection: nothing listens at
// the address.
func Refused(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
