package proc

import (
	"errors"
	"fmt"
	"math"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// orphanMemory bounds how many exits of unknown PIDs the reaper remembers, so
// that Adopt can still learn the exit of a process that died before it was
// adopted (a USR2 master that re-parented to us and exited at once).
const orphanMemory = 1024

// Reaper is the only caller of wait4 in the supervisor. It reaps every child:
// managed processes (registered by Start or Adopt, whose exits it routes by
// PID) and orphans re-parented to the supervisor (PID 1 or child subreaper),
// which it reaps and counts. No other code may wait for a child: os/exec's
// Cmd.Wait would race it, so processes are started through Start.
type Reaper struct {
	mu      sync.Mutex
	subs    map[int]chan ExitInfo
	recent  map[int]ExitInfo // exits of PIDs nobody had registered
	order   []int            // FIFO of recent's keys
	orphans uint64
	sigs    chan os.Signal
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once
}

// NewReaper subscribes to SIGCHLD at once (before any child can be started)
// and starts the reaping goroutine. Close stops it. It also marks every
// descriptor from 3 up close-on-exec (see CloexecInherited).
func NewReaper() *Reaper {
	r := &Reaper{
		subs:   make(map[int]chan ExitInfo),
		recent: make(map[int]ExitInfo),
		sigs:   make(chan os.Signal, 16),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	CloexecInherited()
	signal.Notify(r.sigs, syscall.SIGCHLD)
	go r.loop()
	return r
}

func (r *Reaper) loop() {
	defer close(r.done)
	// A slow tick covers SIGCHLDs lost while the handler was being installed
	// (children inherited across a self re-exec); SIGCHLD coalesces, so every
	// wake-up drains all pending exits.
	tick := time.NewTicker(5 * time.Second)
	defer tick.Stop()
	for {
		r.reap()
		select {
		case <-r.sigs:
		case <-tick.C:
		case <-r.stop:
			return
		}
	}
}

// reap collects every exited child without blocking, holding mu so that a
// Start in progress cannot miss the exit of the PID it is about to register.
func (r *Reaper) reap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return // ECHILD: no children; 0: none exited yet
		}
		info := ExitInfo{Code: -1, Time: time.Now()}
		switch {
		case ws.Exited():
			info.Code = ws.ExitStatus()
		case ws.Signaled():
			info.Signal = int(ws.Signal())
		default:
			continue // stopped/continued are not requested (no WUNTRACED)
		}
		if ch, ok := r.subs[pid]; ok {
			delete(r.subs, pid)
			ch <- info // buffered 1, registered once: never blocks
			close(ch)
			continue
		}
		r.orphans++
		r.remember(pid, info)
	}
}

func (r *Reaper) remember(pid int, info ExitInfo) {
	if _, ok := r.recent[pid]; !ok {
		r.order = append(r.order, pid)
	}
	r.recent[pid] = info
	for len(r.order) > orphanMemory {
		delete(r.recent, r.order[0])
		r.order = r.order[1:]
	}
}

// Start runs fork (a function that creates exactly one child and returns its
// PID) with the reaper locked, and registers the PID before any exit can be
// reaped. The returned channel yields the child's exit once, then closes.
func (r *Reaper) Start(fork func() (int, error)) (int, <-chan ExitInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pid, err := fork()
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan ExitInfo, 1)
	r.subs[pid] = ch
	delete(r.recent, pid)
	return pid, ch, nil
}

// Adopt registers a PID that became the supervisor's child without Start
// (a Gunicorn master created by USR2 that re-parented to the supervisor). If
// that PID was already reaped as an orphan, the channel yields its exit at once.
// Adopt of a PID that is not (and will not become) our child never yields:
// callers must also watch the process by other means (see Alive).
func (r *Reaper) Adopt(pid int) <-chan ExitInfo {
	r.mu.Lock()
	defer r.mu.Unlock()
	ch := make(chan ExitInfo, 1)
	if info, ok := r.recent[pid]; ok {
		delete(r.recent, pid)
		ch <- info
		close(ch)
		return ch
	}
	if old, ok := r.subs[pid]; ok {
		return old
	}
	r.subs[pid] = ch
	return ch
}

// Forget drops a registration made by Adopt for a process that turned out not
// to be ours; its exit, if ever reaped, is then counted as an orphan.
func (r *Reaper) Forget(pid int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.subs, pid)
}

// Orphans returns how many exits of unregistered processes were reaped.
func (r *Reaper) Orphans() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Managed reports whether pid is registered (started or adopted, not yet reaped).
func (r *Reaper) Managed(pid int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.subs[pid]
	return ok
}

// Pause holds the reaper still (no wait4) until the returned func is called;
// calling that func more than once is safe. A self-upgrade pauses it so that
// exits stay unreaped (zombies) for the next image to collect.
func (r *Reaper) Pause() func() {
	r.mu.Lock()
	var once sync.Once
	return func() { once.Do(r.mu.Unlock) }
}

// Close stops the reaping goroutine; safe to call twice. Children still
// running are not touched.
func (r *Reaper) Close() {
	r.once.Do(func() {
		signal.Stop(r.sigs)
		close(r.stop)
	})
	<-r.done
}

// CloexecInherited marks every descriptor from 3 up close-on-exec.
// Descriptors the supervisor opens are CLOEXEC already, but ones it inherited
// without the flag (from a shell, a container runtime, the parent of a test)
// would otherwise leak into every app: syscall.ForkExec dups the listed files
// and closes nothing else. It runs once, when the reaper is made at startup,
// not per spawn: a self-upgrade clears CLOEXEC on the fds it hands over just
// before its exec, and a per-spawn pass would race with that. Failures only
// leave fds as they were, so they are ignored.
func CloexecInherited() {
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return
	}
	// Kernels before 5.11 lack CLOSE_RANGE_CLOEXEC: walk /proc/self/fd.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd >= 3 {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC) // EBADF: the ReadDir fd, closed meanwhile
		}
	}
}

// SetChildSubreaper marks the supervisor so that orphaned descendants
// re-parent to it instead of to PID 1 (a no-op need when it is PID 1).
func SetChildSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_CHILD_SUBREAPER): %w", err)
	}
	return nil
}
