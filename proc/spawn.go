package proc

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Spec is everything one fork+exec needs.
type Spec struct {
	Argv []string // Argv[0] absolute
	Env  []string
	Dir  string
	// Files become the child's fds 3, 4, ... in order.
	Files []int
	// Cred, when not nil, is the uid, gid and supplementary groups the
	// child takes before exec (setgroups, then setgid, then setuid).
	Cred *syscall.Credential
	// Attrs are applied to the child before its program runs.
	Attrs Attrs
	// Cgroup, when > 0, is a cgroup v2 directory descriptor (Cgroup.FD):
	// the child starts in that cgroup (clone3 CLONE_INTO_CGROUP).
	Cgroup int
}

// ForkExec starts spec through the reaper (so its exit cannot be missed), in
// a new process group, with stdin /dev/null, stdout on outW and stderr on
// errW (the same descriptor for merged output). The
// child inherits no other descriptor: every fd the supervisor opens is CLOEXEC
// and ForkExec dups only the ones listed. It returns the child's PID and the
// channel that yields its exit once.
func (r *Reaper) ForkExec(spec Spec, outW, errW int) (int, <-chan ExitInfo, error) {
	if !spec.Attrs.empty() {
		return r.forkGated(spec, outW, errW)
	}
	devnull, err := unix.Open("/dev/null", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, nil, fmt.Errorf("open /dev/null: %w", err)
	}
	defer unix.Close(devnull)
	return r.forkExec(spec, devnull, outW, errW)
}

// forkExec starts spec with stdin on fd in, stdout on outW and stderr on
// errW.
func (r *Reaper) forkExec(spec Spec, in, outW, errW int) (int, <-chan ExitInfo, error) {
	files := []uintptr{uintptr(in), uintptr(outW), uintptr(errW)}
	for _, fd := range spec.Files {
		files = append(files, uintptr(fd))
	}
	attr := &syscall.ProcAttr{
		Dir:   spec.Dir,
		Env:   spec.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: spec.Cred, UseCgroupFD: spec.Cgroup > 0, CgroupFD: spec.Cgroup},
	}
	return r.Start(func() (int, error) {
		pid, err := syscall.ForkExec(spec.Argv[0], spec.Argv, attr)
		if err != nil {
			return 0, fmt.Errorf("start %s in %s: %w", spec.Argv[0], spec.Dir, err)
		}
		return pid, nil
	})
}

// Output runs argv to completion through the reaper and returns what it
// wrote to stdout and stderr (at most 64 KiB), killing its tree when ctx
// ends (the error then wraps ctx.Err()).
func (r *Reaper) Output(ctx context.Context, argv []string, env []string, dir string) ([]byte, ExitInfo, error) {
	return r.OutputSpec(ctx, Spec{Argv: argv, Env: env, Dir: dir})
}

// OutputSpec is Output for a whole spec (credentials and attributes
// included); spec.Files are passed as ForkExec passes them.
func (r *Reaper) OutputSpec(ctx context.Context, spec Spec) ([]byte, ExitInfo, error) {
	argv := spec.Argv
	if len(argv) == 0 {
		return nil, ExitInfo{}, fmt.Errorf("empty command")
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return nil, ExitInfo{}, fmt.Errorf("pipe: %w", err)
	}
	// Non-blocking read end: the runtime poller then lets a deadline end a
	// read that a grandchild holding the pipe open would block forever.
	if err := unix.SetNonblock(p[0], true); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, ExitInfo{}, fmt.Errorf("pipe: %w", err)
	}
	rf := os.NewFile(uintptr(p[0]), "output")
	pid, exitCh, err := r.ForkExec(spec, p[1], p[1])
	unix.Close(p[1])
	if err != nil {
		rf.Close()
		return nil, ExitInfo{}, err
	}
	outCh := make(chan []byte, 1)
	go readBounded(rf, 64*1024, outCh)
	// After the exit, output still in the pipe is read for at most a second:
	// a descendant that kept the pipe open (a daemonized grandchild) must not
	// hold the caller.
	drain := func() []byte {
		_ = rf.SetReadDeadline(time.Now().Add(time.Second)) // a poller-backed pipe accepts deadlines
		return <-outCh
	}
	var info ExitInfo
	select {
	case info = <-exitCh:
	case <-ctx.Done():
		SignalTree(pid, unix.SIGKILL)
		info = <-exitCh
		return drain(), info, fmt.Errorf("%s: %w", argv[0], ctx.Err())
	}
	return drain(), info, nil
}

// readBounded reads f to its end (or an error), keeping at most max bytes,
// sends what it kept on out and closes f.
func readBounded(f *os.File, max int, out chan<- []byte) {
	defer f.Close()
	buf := make([]byte, 0, 4096)
	tmp := make([]byte, 4096)
	for {
		n, err := f.Read(tmp)
		if len(buf) < max {
			buf = append(buf, tmp[:n]...)
		}
		if err != nil {
			out <- buf
			return
		}
	}
}
