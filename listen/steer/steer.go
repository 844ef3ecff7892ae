package steer

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"golang.org/x/sys/unix"
)

// Mode names how traffic reaches an app's generations.
type Mode string

const (
	// ModeBPF: each generation has its own socket in one reuseport group and
	// a BPF program picks the serving one.
	ModeBPF Mode = "bpf"
	// ModeRename: each generation of a Unix listener that a reload starts
	// has its own socket at a hidden path, and a rename(2) over the
	// configured path switches new connections to it (see SwitchUnix).
	ModeRename Mode = "rename"
	// ModeShared: all generations accept from one shared listening socket.
	ModeShared Mode = "shared"
)

// Modes lists every Mode, for exporters that give each one a series.
func Modes() []Mode { return []Mode{ModeBPF, ModeRename, ModeShared} }

// MaxListeners is how many listeners a Group holds at once (the size of
// its socket array).
const MaxListeners = 16

// noSlot is the serving index meaning "no listener is selected": the program
// then leaves the choice to the kernel's hash.
const noSlot = ^uint32(0)

// skPass is the SK_REUSEPORT verdict that accepts the connection, on the
// selected socket if the program selected one, else on the socket the
// kernel's hash picks.
const skPass = 1

// migrateReqPath is the sysctl that enables hash-based migration of queued
// connections for reuseport groups without a SELECT_OR_MIGRATE program.
const migrateReqPath = "/proc/sys/net/ipv4/tcp_migrate_req"

// steeringValue is the one value of the steering map: which listeners the
// program selects. A change is one BPF_MAP_UPDATE_ELEM of the whole value,
// so each connection sees either the old or the new steering, never half.
type steeringValue struct {
	Serving uint32 // slot of the serving listener (noSlot: none)
	Canary  uint32 // slot of the canary listener (noSlot: none)
	// Threshold: a new connection whose hash is below it goes to Canary,
	// the others to Serving. 0 sends none to Canary, 1<<32 all.
	Threshold uint64
}

// unsplit is the steering value that sends every new connection to slot.
func unsplit(slot uint32) steeringValue {
	return steeringValue{Serving: slot, Canary: noSlot}
}

// Sizes of the steering map's value: a Group's, and that of a group made
// by a supervisor image whose program read only the serving slot (adopted
// across a self re-exec; it steers but cannot split).
const (
	valueSize       = 16
	legacyValueSize = 4
)

// Offsets in struct sk_reuseport_md (include/uapi/linux/bpf.h) of the
// fields the program reads: hash, the kernel's hash of the connection's
// 4-tuple (since Linux 4.19; a 4-byte read), and migrating_sk, the request
// or established socket being migrated off a closing listener (NULL for a
// new connection; since Linux 5.14; an 8-byte read).
const (
	mdHash        = 32
	mdMigratingSk = 48
)

// kernelObjects are the maps and program one Group owns.
type kernelObjects struct {
	sockets *ebpf.Map     // REUSEPORT_SOCKARRAY: slot -> listening socket
	serving *ebpf.Map     // ARRAY of one steeringValue
	prog    *ebpf.Program // SK_REUSEPORT, SELECT_OR_MIGRATE
	// legacy: serving holds only the serving slot (legacyValueSize).
	legacy bool
}

// ErrSplitUnsupported is returned by Group.Split for a group adopted from
// a supervisor image whose program selects one slot only.
var ErrSplitUnsupported = errors.New("steer: the group's BPF program (adopted from an earlier supervisor image) cannot split by weight; stopping and starting the app gives its listeners a program that can")

// put writes v as the steering map's value with one map update.
func (o *kernelObjects) put(v steeringValue) error {
	if !o.legacy {
		return o.serving.Put(uint32(0), v)
	}
	if v.Canary != noSlot || v.Threshold != 0 {
		return ErrSplitUnsupported
	}
	return o.serving.Put(uint32(0), v.Serving)
}

// lookup reads the steering map's value.
func (o *kernelObjects) lookup() (steeringValue, error) {
	if !o.legacy {
		var v steeringValue
		err := o.serving.Lookup(uint32(0), &v)
		return v, err
	}
	var slot uint32
	err := o.serving.Lookup(uint32(0), &slot)
	return unsplit(slot), err
}

// Available returns nil when this process can steer TCP connections with
// BPF here, else an error saying why (missing capabilities, a kernel without
// the map or program type), so the caller can use ModeShared. It loads and
// frees the same objects a Group uses.
func Available() error {
	objs, err := loadObjects()
	if err != nil {
		return err
	}
	objs.close()
	return nil
}

// loadObjects creates the maps and loads the program that reads them. On
// error nothing is left open; the error explains the cause.
func loadObjects() (*kernelObjects, error) {
	sockets, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "steer_socks", Type: ebpf.ReusePortSockArray,
		KeySize: 4, ValueSize: 8, MaxEntries: MaxListeners,
	})
	if err != nil {
		return nil, explain("create REUSEPORT_SOCKARRAY map", err)
	}
	serving, err := ebpf.NewMap(&ebpf.MapSpec{
		Name: "steer_serving", Type: ebpf.Array,
		KeySize: 4, ValueSize: valueSize, MaxEntries: 1,
	})
	if err != nil {
		_ = sockets.Close() // the creation error is the one to report
		return nil, explain("create steering array map", err)
	}
	objs := &kernelObjects{sockets: sockets, serving: serving}
	if err := objs.put(unsplit(noSlot)); err != nil {
		objs.close()
		return nil, fmt.Errorf("steer: initialise steering map: %w", err)
	}
	objs.prog, err = ebpf.NewProgram(&ebpf.ProgramSpec{
		Name:         "steer_select",
		Type:         ebpf.SkReuseport,
		AttachType:   ebpf.AttachSkReuseportSelectOrMigrate,
		License:      "GPL",
		Instructions: selectProgram(sockets.FD(), serving.FD()),
	})
	if err != nil {
		objs.close()
		return nil, explain("load SK_REUSEPORT program (SELECT_OR_MIGRATE)", err)
	}
	return objs, nil
}

// selectProgram returns the SK_REUSEPORT program. It reads the steering
// value from servingFD[0] and picks a first and a second slot: for a new
// connection whose hash is below the threshold, the canary then the
// serving slot; for any other new connection, and for a connection
// migrating off a closing listener, the serving then the canary slot. It
// asks bpf_sk_select_reuseport for socketsFD[first], then, if that fails
// (the slot is empty or its socket is closing) and a second slot is set,
// for socketsFD[second], and passes in every case. With no canary
// (threshold 0, canary noSlot) it selects the serving slot only. A failed
// selection leaves the choice to the kernel's hash among the listening
// sockets, which is better than dropping the SYN.
func selectProgram(socketsFD, servingFD int) asm.Instructions {
	const first, second = asm.R7, asm.R8
	return asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // keep ctx
		asm.StoreImm(asm.RFP, -4, 0, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, servingFD),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.LoadMem(first, asm.R0, 0, asm.Word),   // serving slot
		asm.LoadMem(second, asm.R0, 4, asm.Word),  // canary slot
		asm.LoadMem(asm.R9, asm.R0, 8, asm.DWord), // threshold
		asm.LoadMem(asm.R1, asm.R6, mdMigratingSk, asm.DWord),
		asm.JNE.Imm(asm.R1, 0, "select"), // migrating: serving first
		asm.LoadMem(asm.R2, asm.R6, mdHash, asm.Word),
		asm.JGE.Reg(asm.R2, asm.R9, "select"), // unsigned: serving first
		asm.Mov.Reg(asm.R1, first),            // below: canary first
		asm.Mov.Reg(first, second),
		asm.Mov.Reg(second, asm.R1),
		asm.StoreMem(asm.RFP, -8, first, asm.Word).WithSymbol("select"),
		asm.StoreMem(asm.RFP, -12, second, asm.Word),
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, socketsFD),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -8),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkSelectReuseport.Call(),
		asm.JEq.Imm(asm.R0, 0, "pass"),
		asm.JEq.Imm32(second, int32(-1), "pass"), // -1 is noSlot
		asm.Mov.Reg(asm.R1, asm.R6),
		asm.LoadMapPtr(asm.R2, socketsFD),
		asm.Mov.Reg(asm.R3, asm.RFP),
		asm.Add.Imm(asm.R3, -12),
		asm.Mov.Imm(asm.R4, 0),
		asm.FnSkSelectReuseport.Call(),
		asm.Mov.Imm(asm.R0, skPass).WithSymbol("pass"),
		asm.Return(),
	}
}

// close releases the objects; a program attached to a reuseport group stays
// alive in the kernel as long as the group has sockets.
func (o *kernelObjects) close() {
	// Closing a BPF object's fd cannot fail in a way the caller can act on.
	if o.prog != nil {
		_ = o.prog.Close()
	}
	_ = o.serving.Close()
	_ = o.sockets.Close()
}

// explain wraps err from step with the likely reason steering is unavailable.
func explain(step string, err error) error {
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		return fmt.Errorf("steer: %s: needs CAP_BPF, and bpf(2) allowed by any seccomp filter (running as uid %d): %w",
			step, os.Geteuid(), err)
	case errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL):
		return fmt.Errorf("steer: %s: kernel lacks support (needs Linux 5.14+ for SELECT_OR_MIGRATE; running %s): %w",
			step, kernelRelease(), err)
	default:
		return fmt.Errorf("steer: %s: %w", step, err)
	}
}

// kernelRelease returns uname -r, or "unknown" if uname fails.
func kernelRelease() string {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// MigrateReqSysctl returns net.ipv4.tcp_migrate_req of the caller's network
// namespace. A Group's program migrates queued connections whatever its
// value; the value matters only for reuseport groups without the program
// (ModeShared never uses reuseport).
func MigrateReqSysctl() (int, error) {
	b, err := os.ReadFile(migrateReqPath)
	if err != nil {
		return 0, fmt.Errorf("steer: read %s: %w", migrateReqPath, err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("steer: parse %s %q: %w", migrateReqPath, b, err)
	}
	return v, nil
}
