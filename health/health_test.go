package health

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
)

func TestHTTPCheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			if r.Host != "app.example" {
				http.Error(w, "wrong host "+r.Host, http.StatusBadRequest)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case "/redirect":
			http.Redirect(w, r, "/ok", http.StatusFound)
		case "/slow":
			time.Sleep(500 * time.Millisecond) // the server side of a timeout
		default:
			http.Error(w, "boom", http.StatusInternalServerError)
		}
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, tc := range []struct {
		path string
		want string // "" = pass
	}{
		{"/ok", ""},
		{"/fail", "status 500"},
		{"/redirect", "status 302"},
		{"/slow", "deadline"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			c := New(config.Health{Enabled: true, Path: tc.path, Host: "app.example", Timeout: 100 * time.Millisecond}, nil)
			err := c.Check(context.Background(), addr)
			if tc.want == "" && err != nil {
				t.Fatalf("check: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("check: %v, want %q", err, tc.want)
			}
		})
	}
	c := New(config.Health{Timeout: time.Second}, nil)
	if err := c.Answered(context.Background(), addr, time.Second); err != nil {
		t.Errorf("Answered on a 500: %v (any answer proves a worker booted)", err)
	}
}

func TestTCPCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	c := New(config.Health{Enabled: true, TCP: true, Timeout: time.Second}, nil)
	if err := c.Check(context.Background(), addr); err != nil {
		t.Fatalf("listening: %v", err)
	}
	l.Close()
	if err := c.Check(context.Background(), addr); err == nil {
		t.Fatal("closed port passed")
	}
}

func TestCommandCheck(t *testing.T) {
	// The supervisor passes its reaper's runner; a test may use os/exec.
	run := func(ctx context.Context, argv []string) ([]byte, int, error) {
		out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); ok {
			return out, ee.ExitCode(), nil
		}
		return out, 0, err
	}
	for _, tc := range []struct {
		argv []string
		want string
	}{
		{[]string{"/bin/true"}, ""},
		{[]string{"/bin/sh", "-c", "echo not ready; exit 3"}, "exit 3: not ready"},
		{[]string{"/nonexistent"}, "/nonexistent"},
	} {
		c := New(config.Health{Enabled: true, Command: tc.argv, Timeout: 5 * time.Second}, run)
		err := c.Check(context.Background(), "")
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: err = %v, want %q", tc.argv, err, tc.want)
		}
	}
}
