package steer

import (
	"errors"
	"testing"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// legacyProgram is the program of images whose steering map holds the
// serving slot alone (4 bytes): select that slot, pass in every case.
func legacyProgram(socketsFD, servingFD int) asm.Instructions {
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1),
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, servingFD),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(asm.R0, asm.R0, 0, asm.Word),
		asm.StoreMem(asm.RFP, -8, asm.R0, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, socketsFD),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkSelectReuseport.Call(),
		asm.Mov.Imm(asm.R0, skPass).WithSymbol("pass"),
		asm.Return(),
	}
}

// legacyGroup builds, as an earlier image would have, a group of two
// listeners on a loopback port with a 4-byte steering map serving slot 0,
// and returns the descriptors AdoptGroup takes: the objects' and the
// listeners' by slot.
func legacyGroup(t *testing.T) (ObjectFDs, map[int]int, *kernelObjects) {
	t.Helper()
	sockets, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.ReusePortSockArray, KeySize: 4, ValueSize: 8, MaxEntries: MaxListeners})
	if err != nil {
		t.Fatal(err)
	}
	serving, err := ebpf.NewMap(&ebpf.MapSpec{Type: ebpf.Array, KeySize: 4, ValueSize: legacyValueSize, MaxEntries: 1})
	if err != nil {
		t.Fatal(err)
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type: ebpf.SkReuseport, AttachType: ebpf.AttachSkReuseportSelectOrMigrate, License: "GPL",
		Instructions: legacyProgram(sockets.FD(), serving.FD()),
	})
	if err != nil {
		t.Fatal(err)
	}
	objs := &kernelObjects{sockets: sockets, serving: serving, prog: prog}
	t.Cleanup(objs.close) // the test's own copies; AdoptGroup gets duplicates
	addr := mustTCPAddr(t, "127.0.0.1:0")
	socks := map[int]int{}
	for slot := range 2 {
		fd, bound, err := listenReusePort(addr, 64)
		if err != nil {
			t.Fatal(err)
		}
		addr = bound
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ATTACH_REUSEPORT_EBPF, prog.FD()); err != nil {
			t.Fatal(err)
		}
		if err := sockets.Put(uint32(slot), uint64(fd)); err != nil {
			t.Fatal(err)
		}
		socks[slot] = fd
	}
	if err := serving.Put(uint32(0), uint32(0)); err != nil {
		t.Fatal(err)
	}
	var fds ObjectFDs
	for _, d := range []struct {
		to *int
		fd int
	}{{&fds.Sockets, sockets.FD()}, {&fds.Serving, serving.FD()}, {&fds.Prog, prog.FD()}} {
		if *d.to, err = unix.FcntlInt(uintptr(d.fd), unix.F_DUPFD_CLOEXEC, 3); err != nil {
			t.Fatal(err)
		}
	}
	return fds, socks, objs
}

// TestAdoptLegacyGroup: a group handed over by an image whose steering map
// holds the serving slot alone is adopted; Serve and Remove steer it as
// before, and Split is refused with ErrSplitUnsupported, the steering
// unchanged.
func TestAdoptLegacyGroup(t *testing.T) {
	requireBPF(t)
	fds, socks, _ := legacyGroup(t)
	bound, err := boundAddr(socks[0])
	if err != nil {
		t.Fatal(err)
	}
	g, err := AdoptGroup(bound, 64, fds, socks)
	if err != nil {
		t.Fatalf("AdoptGroup: %v", err)
	}
	t.Cleanup(func() {
		if err := g.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	ls := g.Listeners()
	a, b := ls[0], ls[1]
	if g.Serving() != a {
		t.Fatal("the adopted legacy group does not serve slot 0")
	}
	if err := g.Split(a, b, 0.5); !errors.Is(err, ErrSplitUnsupported) {
		t.Fatalf("Split of a legacy group: %v, want ErrSplitUnsupported", err)
	} else {
		t.Logf("Split of a legacy group: %v", err)
	}
	if c, share := g.Canary(); c != nil || share != 0 || g.Serving() != a {
		t.Fatalf("a refused Split changed the steering: canary %v at %v, serving slot 0 %v", c, share, g.Serving() == a)
	}
	dial(t, bound)
	waitDepth(t, a, 1)
	serve(t, g, b)
	dial(t, bound)
	waitDepth(t, b, 1)
	if err := g.Remove(b); err != nil {
		t.Fatalf("Remove(serving): %v", err)
	}
	if g.Serving() != nil {
		t.Fatal("after removing the serving listener of a legacy group, one still serves")
	}
}
