package control

import (
	"context"
	"errors"
	"testing"

	"golang.org/x/sys/unix"
)

// signalBackend records the signals the signal verb sends.
type signalBackend struct {
	backend
	sent chan unix.Signal
}

func (b *signalBackend) SignalApps(_ context.Context, names []string, sig unix.Signal) []AppResult {
	out := make([]AppResult, len(names))
	for i, n := range names {
		b.sent <- sig
		out[i] = AppResult{App: n, OK: true, PID: 42}
	}
	return out
}

// TestSignalAllowList: the signal verb sends only the allow-listed signals,
// by name with or without SIG, to the apps its targets name; anything else
// is bad_request and sends nothing.
func TestSignalAllowList(t *testing.T) {
	b := &signalBackend{sent: make(chan unix.Signal, 16)}
	_, path := serve(t, b)
	c := NewClient(path)
	ctx := context.Background()
	for name, want := range Signals {
		for _, n := range []string{name, "SIG" + name} {
			r, err := c.Signal(ctx, n, []string{"web"})
			if err != nil || !r.OK || len(r.Results) != 1 {
				t.Fatalf("signal %s: %+v, %v", n, r, err)
			}
			if got := <-b.sent; got != want {
				t.Errorf("signal %s sent %v, want %v", n, got, want)
			}
		}
	}
	for _, n := range []string{"SEGV", "STOP", "CONT", "9", "ALRM", ""} {
		_, err := c.Signal(ctx, n, []string{"web"})
		var ae *APIError
		if n == "" {
			if err == nil {
				t.Errorf("signal with no name: no error")
			}
			continue
		}
		if !errors.As(err, &ae) || ae.Code != CodeBadRequest {
			t.Errorf("signal %s: %v, want bad_request", n, err)
		}
	}
	if _, err := c.Signal(ctx, "TTIN", []string{"nope"}); err == nil {
		t.Error("signal to an unknown app: no error")
	}
	r, err := c.Signal(ctx, "TTIN", []string{"all"})
	if err != nil || len(r.Results) != 2 {
		t.Fatalf("signal all: %+v, %v", r, err)
	}
	select {
	case s := <-b.sent:
		if s != unix.SIGTTIN {
			t.Errorf("sent %v", s)
		}
	default:
		t.Error("signal all sent nothing")
	}
}

// TestStatusTargets: status takes several targets and all; an unknown one
// is not_found.
func TestStatusTargets(t *testing.T) {
	_, path := serve(t, &backend{})
	c := NewClient(path)
	ctx := context.Background()
	st, err := c.StatusOf(ctx, []string{"worker", "web"})
	if err != nil || len(st.Apps) != 2 || st.Apps[0].Name != "web" {
		t.Fatalf("status worker web: %+v, %v", st, err)
	}
	if st, err = c.StatusOf(ctx, []string{"all"}); err != nil || len(st.Apps) != 2 {
		t.Fatalf("status all: %+v, %v", st, err)
	}
	var ae *APIError
	if _, err := c.StatusOf(ctx, []string{"web", "nope"}); !errors.As(err, &ae) || ae.Code != CodeNotFound {
		t.Errorf("status web nope: %v, want not_found", err)
	}
}
