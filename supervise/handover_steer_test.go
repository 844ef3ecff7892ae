package supervise

import (
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/listen/steer"
)

// TestRestoreSteering: handed-over BPF steering is adopted (mode bpf, the
// state then names the adopted descriptors); one that cannot be adopted
// leaves the listener shared, says why once in the log and is dropped
// from the state.
func TestRestoreSteering(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable: %v", err)
	}
	spec := config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 16}
	gs, held, err := listen.BindSteered(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gs.Add(1); err != nil {
		t.Fatal(err)
	}
	if err := gs.Serve(1); err != nil {
		t.Fatal(err)
	}
	var log testenv.SyncBuffer
	m := &Manager{logger: slog.New(slog.NewTextHandler(&log, nil))}

	good, bad := steerCopy(t, gs), steerCopy(t, gs)
	bad.SocketsFD, bad.ServingFD = bad.ServingFD, bad.SocketsFD
	hs := []SocketHandover{{Raw: spec.Raw, FD: held.FD(), Steer: good}, {Raw: spec.Raw, FD: held.FD(), Steer: bad}}
	gens := m.restoreSteering("web", hs, []*Socket{held, held})
	t.Cleanup(func() {
		if err := closeSteered(gens); err != nil {
			t.Error(err)
		}
		_ = gs.Close()   // its slots were cleared by the adopted copy's Close
		_ = held.Close() // the last descriptor of the address
	})
	if len(gens) != 2 || gens[0] == nil || gens[0].mode() != steer.ModeBPF || gens[1] != nil {
		t.Fatalf("restored steering %v, want bpf then shared", gens)
	}
	if !gens[0].serving(1) {
		t.Error("the adopted steering does not serve generation 1")
	}
	if hs[0].Steer == nil || hs[0].Steer.SocketsFD == good.SocketsFD || hs[1].Steer != nil {
		t.Errorf("state after restore: %+v / %+v, want the adopted descriptors, then none", hs[0].Steer, hs[1].Steer)
	}
	if n := strings.Count(log.String(), "BPF steering not adopted"); n != 1 {
		t.Errorf("%d warnings for the refused steering, want 1:\n%s", n, log.String())
	}
}

// steerCopy describes gs as a self re-exec hands it over, on duplicates
// of its descriptors (the next image's copies).
func steerCopy(t *testing.T, gs *listen.GenSockets) *listen.SteerHandover {
	t.Helper()
	h := gs.Handover()
	dup := func(fd int) int {
		d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	h.SocketsFD, h.ServingFD, h.ProgFD = dup(h.SocketsFD), dup(h.ServingFD), dup(h.ProgFD)
	for i := range h.Sockets {
		h.Sockets[i].FD = dup(h.Sockets[i].FD)
	}
	return h
}
