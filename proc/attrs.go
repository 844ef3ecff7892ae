package proc

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Attrs are process attributes a child gets before its program runs. The
// zero value changes nothing.
type Attrs struct {
	// Umask, when not nil, is the child's file mode creation mask.
	Umask *int
	// Nice, when not nil, is the child's scheduling priority (-20..19).
	Nice *int
	// OOMScoreAdj, when not nil, is written to the child's oom_score_adj.
	OOMScoreAdj *int
	// Rlimits set each resource's soft and hard limit.
	Rlimits []Rlimit
}

// Rlimit is one resource limit: Resource is an RLIMIT_* constant, Value
// both the soft and the hard limit (unix.RLIM_INFINITY for unlimited).
type Rlimit struct {
	Resource int
	Value    uint64
}

func (a Attrs) empty() bool {
	return a.Umask == nil && a.Nice == nil && a.OOMScoreAdj == nil && len(a.Rlimits) == 0
}

// gateScript waits on stdin for "go" before it execs its arguments with
// stdin on /dev/null; any other input (the supervisor closing the pipe
// after a failure) ends it with 126. %s is an optional umask command.
const gateScript = `read -r go || exit 126; [ "$go" = go ] || exit 126; %sexec "$@" </dev/null`

// gateTimeout bounds how long a gated child may take to exit after its gate
// is closed without "go" (it exits at once; a SIGKILL follows the bound).
const gateTimeout = 5 * time.Second

// forkGated starts spec behind a /bin/sh gate: the shell (already with
// spec.Cred) blocks reading a pipe on its stdin while the supervisor sets
// the child's rlimits, nice and oom_score_adj from outside (prlimit,
// setpriority and /proc, which need no cooperation from the child and keep
// the privileges to raise limits or lower nice even when the child has
// dropped them); then the shell sets the umask and execs spec.Argv in the
// same process. When an attribute cannot be set the child is ended before
// spec.Argv ever runs, and the error names the attribute.
func (r *Reaper) forkGated(spec Spec, outW, errW int) (int, <-chan ExitInfo, error) {
	var gate [2]int
	if err := unix.Pipe2(gate[:], unix.O_CLOEXEC); err != nil {
		return 0, nil, fmt.Errorf("gate pipe: %w", err)
	}
	umask := ""
	if spec.Attrs.Umask != nil {
		umask = fmt.Sprintf("umask %04o; ", *spec.Attrs.Umask)
	}
	shim := spec
	shim.Argv = append([]string{"/bin/sh", "-c", fmt.Sprintf(gateScript, umask), "sh"}, spec.Argv...)
	pid, exitCh, err := r.forkExec(shim, gate[0], outW, errW)
	unix.Close(gate[0])
	if err != nil {
		unix.Close(gate[1])
		return 0, nil, err
	}
	if err := spec.Attrs.apply(pid, spec.Cred); err != nil {
		unix.Close(gate[1])
		endGated(pid, exitCh)
		return 0, nil, fmt.Errorf("%s: %w", spec.Argv[0], err)
	}
	_, werr := unix.Write(gate[1], []byte("go\n"))
	unix.Close(gate[1])
	if werr != nil {
		endGated(pid, exitCh)
		return 0, nil, fmt.Errorf("%s: open the start gate: %w", spec.Argv[0], werr)
	}
	return pid, exitCh, nil
}

// endGated waits for a gated child whose gate closed without "go" to exit,
// killing it after gateTimeout.
func endGated(pid int, exitCh <-chan ExitInfo) {
	select {
	case <-exitCh:
		return
	case <-time.After(gateTimeout):
	}
	_ = unix.Kill(pid, unix.SIGKILL) // it may have exited in between; the wait below tells
	<-exitCh
}

// apply sets a's nice, oom_score_adj and rlimits on process pid, which
// runs with cred (nil: the supervisor's own ids). It works on a locked OS
// thread that it discards: nice and oom_score_adj are set first, with the
// supervisor's privileges (a negative nice needs CAP_SYS_NICE, a lowered
// oom_score_adj CAP_SYS_RESOURCE); then the thread takes cred's real uid
// and gid, keeping its effective ids and so its capabilities, because the
// kernel lets a caller whose real ids match the target's set its rlimits
// without CAP_SYS_RESOURCE (that capability is then needed only to raise a
// hard limit, as for the child itself).
func (a Attrs) apply(pid int, cred *syscall.Credential) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread's ids change, so it must end with
		// this goroutine rather than run others.
		runtime.LockOSThread()
		errc <- a.applyLocked(pid, cred)
	}()
	return <-errc
}

func (a Attrs) applyLocked(pid int, cred *syscall.Credential) error {
	if a.Nice != nil {
		if err := unix.Setpriority(unix.PRIO_PROCESS, pid, *a.Nice); err != nil {
			return fmt.Errorf("nice %d: %w", *a.Nice, err)
		}
	}
	if a.OOMScoreAdj != nil {
		path := "/proc/" + strconv.Itoa(pid) + "/oom_score_adj"
		if err := os.WriteFile(path, []byte(strconv.Itoa(*a.OOMScoreAdj)), 0); err != nil {
			return fmt.Errorf("oom_score_adj %d: %w", *a.OOMScoreAdj, err)
		}
	}
	if len(a.Rlimits) == 0 {
		return nil
	}
	if cred != nil {
		// Raw calls: the libc-style wrappers would change every thread.
		keep := ^uintptr(0) // -1: leave that id as it is
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESGID, uintptr(cred.Gid), keep, keep); e != 0 {
			return fmt.Errorf("rlimits: take gid %d: %w", cred.Gid, e)
		}
		if _, _, e := unix.RawSyscall(unix.SYS_SETRESUID, uintptr(cred.Uid), keep, keep); e != 0 {
			return fmt.Errorf("rlimits: take uid %d: %w", cred.Uid, e)
		}
	}
	for _, rl := range a.Rlimits {
		lim := unix.Rlimit{Cur: rl.Value, Max: rl.Value}
		if err := unix.Prlimit(pid, rl.Resource, &lim, nil); err != nil {
			return fmt.Errorf("rlimit %d = %d: %w", rl.Resource, rl.Value, err)
		}
	}
	return nil
}
