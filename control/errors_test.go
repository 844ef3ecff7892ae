package control

import (
	"context"
	"errors"
	"testing"
	"time"
)

// inboxBackend is the scripted backend with error inboxes.
type inboxBackend struct{ backend }

func (b *inboxBackend) AppErrors(name string) (AppErrors, error) {
	if err := b.check(name); err != nil {
		return AppErrors{}, err
	}
	at := time.Date(2026, 12, 7, 2, 0, 0, 0, time.UTC)
	return AppErrors{Name: name, WorkerTimeouts: 1, WorkerKilled: map[string]uint64{"SIGKILL": 2}, Groups: []ErrorGroup{{
		Fingerprint: "bc259bc8cd1c", Exception: "ValueError", Message: "ValueError: x", Where: "/srv/app/app.py:6 in parse",
		Count: 3, FirstSeen: at, LastSeen: at.Add(time.Minute), Generation: 2,
		Traceback: []string{"Traceback (most recent call last):", `  File "/srv/app/app.py", line 6, in parse`, "ValueError: x"},
	}}}, nil
}

// TestErrorsVerb: GET /v1/errors answers the inboxes of the targets (every
// app without one), an unknown target is not_found, and a backend without
// inboxes answers 501; the wire form is testdata/errors.json.
func TestErrorsVerb(t *testing.T) {
	_, path := serve(t, &inboxBackend{})
	c := NewClient(path)
	ctx := context.Background()
	all, err := c.Errors(ctx, nil)
	if err != nil || len(all.Apps) != 2 || all.Apps[0].Name != "web" || all.Apps[1].Name != "worker" {
		t.Fatalf("errors: %+v %v", all, err)
	}
	one, err := c.Errors(ctx, []string{"web"})
	if err != nil || len(one.Apps) != 1 || one.Apps[0].Groups[0].Count != 3 {
		t.Fatalf("errors web: %+v %v", one, err)
	}
	golden(t, "errors.json", *one)
	var ae *APIError
	if _, err := c.Errors(ctx, []string{"nope"}); !errors.As(err, &ae) || ae.Code != CodeNotFound {
		t.Errorf("errors nope: %v", err)
	}
	_, plain := serve(t, &backend{})
	if _, err := NewClient(plain).Errors(ctx, nil); !errors.As(err, &ae) || ae.Status != 501 {
		t.Errorf("errors without inboxes: %v", err)
	}
}
