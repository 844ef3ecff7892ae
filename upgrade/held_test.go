package upgrade

import (
	"log/slog"
	"path/filepath"
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
	logger := slog.New(slog.NewTextHandler(&log, nil))

	good, bad := steerCopy(t, gs), steerCopy(t, gs)
	bad.SocketsFD, bad.ServingFD = bad.ServingFD, bad.SocketsFD
	hs := []SocketHandover{{Raw: spec.Raw, FD: held.FD(), Steer: good}, {Raw: spec.Raw, FD: held.FD(), Steer: bad}}
	gens := (&Handover{Sockets: map[string][]SocketHandover{"web": hs}}).Held("web", []*listen.Socket{held, held}, logger).Steering
	t.Cleanup(func() {
		if err := (&listen.Held{Steering: gens}).Close(); err != nil {
			t.Error(err)
		}
		_ = gs.Close()   // its slots were cleared by the adopted copy's Close
		_ = held.Close() // the last descriptor of the address
	})
	if len(gens) != 2 || gens[0] == nil || gens[0].Mode() != steer.ModeBPF || gens[1] != nil {
		t.Fatalf("restored steering %v, want bpf then shared", gens)
	}
	if !gens[0].Serving(1) {
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
	h.SocketsFD, h.ServingFD, h.ProgFD = dupFD(t, h.SocketsFD), dupFD(t, h.ServingFD), dupFD(t, h.ProgFD)
	for i := range h.Sockets {
		h.Sockets[i].FD = dupFD(t, h.Sockets[i].FD)
	}
	return h
}

// TestRestoreRenameSteering: handed-over rename steering of a Unix
// listener is adopted (mode rename, the state then names the adopted
// generation sockets, the handed-over ones are closed); one that cannot
// be adopted leaves the listener shared, says why once in the log and is
// dropped from the state.
func TestRestoreRenameSteering(t *testing.T) {
	path := filepath.Join(t.TempDir(), "api.sock")
	spec := config.Listener{Raw: "unix://" + path, Network: config.NetUnix, Address: path, Backlog: 16}
	held, err := listen.Bind(spec)
	if err != nil {
		t.Fatal(err)
	}
	u, err := listen.SteerUnix(held)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() }) // removes the names once everything is checked
	for _, gen := range []int{1, 2} {
		if _, err := u.Add(gen, gen == 2); err != nil {
			t.Fatal(err)
		}
	}
	var log testenv.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&log, nil))
	good, bad := renameCopy(t, u), renameCopy(t, u)
	bad.Sockets[0].Hold += ".elsewhere"
	handed := good.Sockets[0].FD
	socks := []*listen.Socket{heldCopy(t, held), heldCopy(t, held)}
	hs := []SocketHandover{{Raw: spec.Raw, FD: socks[0].FD(), Rename: good}, {Raw: spec.Raw, FD: socks[1].FD(), Rename: bad}}
	gens := (&Handover{Sockets: map[string][]SocketHandover{"api": hs}}).Held("api", socks, logger).Steering
	t.Cleanup(func() {
		_ = (&listen.Held{Steering: gens}).Close() // its names are u's too: u's Close reports
		_ = socks[1].Shut()                        // the shared copy; the names are u's
	})
	if len(gens) != 2 || gens[0] == nil || gens[0].Mode() != steer.ModeRename || gens[1] != nil {
		t.Fatalf("restored steering %v, want rename then shared", gens)
	}
	if !gens[0].Serving(1) || gens[0].Serving(2) {
		t.Error("the adopted steering does not serve generation 1 alone")
	}
	if hs[0].Rename == nil || len(hs[0].Rename.Sockets) != 1 || hs[0].Rename.Sockets[0].FD == handed || hs[1].Rename != nil {
		t.Errorf("state after restore: %+v / %+v, want the adopted socket, then none", hs[0].Rename, hs[1].Rename)
	}
	if _, err := unix.FcntlInt(uintptr(handed), unix.F_GETFD, 0); err == nil {
		t.Errorf("handed-over fd %d still open after its adoption", handed)
	}
	if n := strings.Count(log.String(), "rename steering not adopted"); n != 1 {
		t.Errorf("%d warnings for the refused steering, want 1:\n%s", n, log.String())
	}
}

// renameCopy describes u as a self re-exec hands it over, on duplicates
// of its generation sockets (the next image's copies).
func renameCopy(t *testing.T, u *listen.UnixGens) *listen.UnixSteerHandover {
	t.Helper()
	h := u.Handover()
	for i := range h.Sockets {
		h.Sockets[i].FD = dupFD(t, h.Sockets[i].FD)
	}
	return h
}

// heldCopy adopts a duplicate of held as the next image does.
func heldCopy(t *testing.T, held *listen.Socket) *listen.Socket {
	t.Helper()
	ino, hold := held.Held()
	s, err := listen.AdoptHeld(held.Spec, dupFD(t, held.FD()), ino, hold)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dupFD returns a close-on-exec duplicate of fd.
func dupFD(t *testing.T, fd int) int {
	t.Helper()
	d, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
