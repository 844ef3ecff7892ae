package supervise

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/proc"
)

// orphanGenID is the generation number of an adopted orphan generation in
// its successor: the successor numbers its own generations from 1, so 0
// never names one of them (steered sockets are recorded by number).
const orphanGenID = 0

// orphanGen is the generation a dead predecessor left serving an app,
// tracked by its successor until a new generation passes the gate and takes
// over. It is not the successor's child: its master's exit is seen through
// a pidfd, never waited for, and its status is unknown (exit -1).
type orphanGen struct {
	app string
	// prevID is its number in the predecessor's run.
	prevID  int
	pid     int
	dir     string
	started time.Time
	// members lists its live processes (its process group).
	members func() []int
	// grace bounds the stop of what the master leaves when it exits.
	grace time.Duration
	// cleanup runs once nothing of it is left (the predecessor's cgroups).
	cleanup func()
	done    chan struct{}
	exit    ExitInfo
}

// newOrphanGen watches the master pid of an orphan generation, which must
// have started at leader clock ticks after boot. Once the master has
// exited, what is left of members gets TERM, then KILL after grace,
// cleanup runs, and Done closes. A master already gone (or its pid reused)
// is Done at once.
func newOrphanGen(app string, run RunGen, members func() []int, grace time.Duration, cleanup func()) *orphanGen {
	g := &orphanGen{app: app, prevID: run.ID, pid: run.Group.PGID, dir: run.Dir, started: time.Now(), members: members, grace: grace, cleanup: cleanup, done: make(chan struct{})}
	fd, err := unix.PidfdOpen(g.pid, 0)
	if err == nil {
		if started, serr := proc.StartTime(g.pid); serr != nil || started != run.Group.Leader {
			unix.Close(fd)
			err = fmt.Errorf("pid %d is another process", g.pid)
		}
	}
	go g.watch(fd, err)
	return g
}

// watch waits until the master behind pidfd fd exits (at once when open
// failed with err), ends its leftovers and closes done.
func (g *orphanGen) watch(fd int, err error) {
	if err == nil {
		for {
			_, perr := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
			if !errors.Is(perr, unix.EINTR) {
				break
			}
		}
		unix.Close(fd)
	}
	proc.Terminate(g.members, g.grace, 100*time.Millisecond)
	g.cleanup()
	g.exit = ExitInfo{Code: -1, Time: time.Now()}
	close(g.done)
}

func (g *orphanGen) Done() <-chan struct{} { return g.done }

// Exit is unknown for a process that is not a child: exit -1.
func (g *orphanGen) Exit() ExitInfo {
	<-g.done
	return g.exit
}

func (g *orphanGen) Exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the master (nothing once it has exited).
func (g *orphanGen) Signal(sig syscall.Signal) error {
	if g.Exited() {
		return nil
	}
	if err := unix.Kill(g.pid, sig); err != nil && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("%s: signal %d: %w", g, sig, err)
	}
	return nil
}

// Stop sends sig, waits up to timeout (or ctx), then KILLs every member
// and waits up to 5 s more; the error names a generation that outlived it.
func (g *orphanGen) Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) (ExitInfo, error) {
	const killWait = 5 * time.Second
	if err := g.Signal(sig); err != nil {
		return ExitInfo{}, err
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-g.done:
		return g.exit, nil
	case <-t.C:
	case <-ctx.Done():
	}
	g.Kill()
	k := time.NewTimer(killWait)
	defer k.Stop()
	select {
	case <-g.done:
		return g.exit, nil
	case <-k.C:
		return ExitInfo{}, fmt.Errorf("%s still alive %s after SIGKILL", g, killWait)
	}
}

// Kill sends SIGKILL to every live member.
func (g *orphanGen) Kill() {
	for _, pid := range g.members() {
		_ = unix.Kill(pid, unix.SIGKILL) // it may have exited meanwhile
	}
}

func (g *orphanGen) Info() GenInfo {
	return GenInfo{ID: orphanGenID, PID: g.pid, Started: g.started, Dir: g.dir}
}

func (g *orphanGen) Workers() []int {
	if g.Exited() {
		return nil
	}
	return proc.Children(g.pid)
}

// Tail is empty: the orphan's output went to its predecessor's pipes.
func (g *orphanGen) Tail() []string { return nil }

func (g *orphanGen) String() string {
	return fmt.Sprintf("the previous supervisor's generation %d (pid %d)", g.prevID, g.pid)
}

func (g *orphanGen) ExitReason() string { return g.Exit().String() }

var _ generation = (*orphanGen)(nil)
