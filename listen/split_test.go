package listen

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// tcpSpec is a loopback TCP listener on a free port.
func tcpSpec() config.Listener {
	return config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 64}
}

// steeredTCP binds a BPF-steered TCP listener, closed at cleanup.
func steeredTCP(t *testing.T) (*GenSockets, *Socket) {
	t.Helper()
	gs, held, err := BindSteered(tcpSpec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := errors.Join(gs.Close(), held.Close()); err != nil {
			t.Error(err)
		}
	})
	return gs, held
}

// wantSplit fails the test unless tab reports split want (ok false: none).
func wantSplit(t *testing.T, tab *Table, want SplitState, ok bool) {
	t.Helper()
	got, gotOK := tab.SplitState()
	if got != want || gotOK != ok {
		t.Fatalf("SplitState() = %+v, %v; want %+v, %v", got, gotOK, want, ok)
	}
	for i, e := range tab.Entries() {
		if got, gotOK := e.Split(); got != want || gotOK != ok {
			t.Fatalf("listener %d: Split() = %+v, %v; want %+v, %v", i, got, gotOK, want, ok)
		}
	}
}

// TestTableSplit splits two BPF-steered listeners between generations 1
// and 2: share 1 sends every new connection to generation 2, share 0 back
// to 1; the canary's exit ends the split and its queued connections move
// to generation 1's sockets; Serve ends a split.
func TestTableSplit(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable: %v", err)
	}
	a, ha := steeredTCP(t)
	b, hb := steeredTCP(t)
	tab := NewTable([]*Socket{ha, hb}, []Steering{a, b})
	for _, gen := range []int{1, 2} {
		if _, _, err := tab.Open(gen, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := tab.Serve(1); err != nil {
		t.Fatal(err)
	}
	wantSplit(t, tab, SplitState{}, false)
	if err := tab.Split(1, 2, 1); err != nil {
		t.Fatal(err)
	}
	wantSplit(t, tab, SplitState{Serving: 1, Canary: 2, Share: 1}, true)
	for _, gs := range []*GenSockets{a, b} {
		dial(t, gs.group.Addr().String())
		waitDepth(t, gs, 2, 1)
		waitDepth(t, gs, 1, 0)
	}
	if err := tab.Split(1, 2, 0); err != nil {
		t.Fatal(err)
	}
	wantSplit(t, tab, SplitState{}, false)
	for _, gs := range []*GenSockets{a, b} {
		dial(t, gs.group.Addr().String())
		waitDepth(t, gs, 1, 1)
	}
	if err := tab.Split(1, 2, 0.5); err != nil {
		t.Fatal(err)
	}
	if err := tab.Release(2); err != nil { // the canary exits: its queue moves to 1
		t.Fatal(err)
	}
	wantSplit(t, tab, SplitState{}, false)
	for _, gs := range []*GenSockets{a, b} {
		waitDepth(t, gs, 1, 2)
	}
	if err := tab.Split(1, 2, 0.5); err == nil {
		t.Fatal("Split with an exited canary succeeded, want an error")
	}
	if _, _, err := tab.Open(3, true); err != nil {
		t.Fatal(err)
	}
	if err := tab.Split(1, 3, 0.25); err != nil {
		t.Fatal(err)
	}
	if err := tab.Serve(3); err != nil {
		t.Fatal(err)
	}
	wantSplit(t, tab, SplitState{}, false)
	if !a.Serving(3) || !b.Serving(3) {
		t.Fatal("after Serve(3) generation 3 does not serve")
	}
}

// TestTableSplitRefused: a rename-steered Unix listener, a shared socket
// and an app without listeners cannot split; the error names the listener
// and the steered TCP listener beside it is left unsplit.
func TestTableSplitRefused(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable: %v", err)
	}
	gs, held := steeredTCP(t)
	_, _, uheld, u := steeredUnix(t)
	shared, err := Bind(tcpSpec())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shared.Close() }) // closed once, at the end
	for _, tc := range []struct {
		name string
		tab  *Table
		want string
	}{
		{"rename", NewTable([]*Socket{held, uheld}, []Steering{gs, u}),
			uheld.Spec.Raw + ": rename steering cannot split by weight; --canary needs TCP listeners with BPF steering"},
		{"shared", NewTable([]*Socket{held, shared}, []Steering{gs}),
			"tcp://127.0.0.1:0: a shared socket (no BPF steering) cannot split by weight; --canary needs TCP listeners with BPF steering"},
		{"none", nil, "the app has no listeners to split by weight; --canary needs TCP listeners with BPF steering"},
	} {
		if _, _, err := tc.tab.Open(1, true); err != nil {
			t.Fatal(err)
		}
		if _, _, err := tc.tab.Open(2, true); err != nil {
			t.Fatal(err)
		}
		if err := tc.tab.CanSplit(); err == nil || err.Error() != tc.want {
			t.Fatalf("%s: CanSplit: %v; want %q", tc.name, err, tc.want)
		}
		err := tc.tab.Split(1, 2, 0.1)
		var se *SplitError
		if !errors.As(err, &se) || !errors.Is(err, ErrCannotSplit) || err.Error() != tc.want {
			t.Fatalf("%s: Split: %v; want a *SplitError %q", tc.name, err, tc.want)
		}
		t.Logf("%s: %v", tc.name, err)
		if _, ok := gs.SplitState(); ok {
			t.Fatalf("%s: a refused Split left the TCP listener split", tc.name)
		}
	}
}

// TestAdoptSteeredKeepsSplit: a split survives the hand-over to the next
// image, which reports it and can end it.
func TestAdoptSteeredKeepsSplit(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable: %v", err)
	}
	spec := tcpSpec()
	old, held, err := BindSteered(spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = held.Close() }) // closed once, at the end
	for _, gen := range []int{1, 2} {
		if _, err := old.Add(gen); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Split(1, 2, 0.1); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(old.Handover())
	if err != nil {
		t.Fatal(err)
	}
	var h SteerHandover
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	gs, err := AdoptSteered(spec, held, &h)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := gs.Close(); err != nil {
			t.Error(err)
		}
		_ = old.Close() // its removals fail on slots the adopted group cleared
	})
	got, ok := gs.SplitState()
	if want := (SplitState{Serving: 1, Canary: 2, Share: 0.1}); !ok || got.Serving != want.Serving || got.Canary != want.Canary || got.Share-want.Share > 1e-9 || want.Share-got.Share > 1e-9 {
		t.Fatalf("adopted split %+v (%v), want %+v", got, ok, want)
	}
	if err := gs.Serve(1); err != nil {
		t.Fatal(err)
	}
	if _, ok := gs.SplitState(); ok {
		t.Fatal("Serve(1) on the adopted listener left it split")
	}
	if c, _ := gs.group.Canary(); c != nil {
		t.Fatal("Serve(1) on the adopted listener left the kernel's split")
	}
}
