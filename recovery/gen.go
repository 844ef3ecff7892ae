package recovery

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/proc"
)

// GenID is the generation number of an adopted orphan generation in
// its successor: the successor numbers its own generations from 1, so 0
// never names one of them (steered sockets are recorded by number).
const GenID = 0

// Gen is the generation a dead predecessor left serving an app,
// tracked by its successor until a new generation passes the gate and takes
// over. It is not the successor's child: its master's exit is seen through
// a pidfd, never waited for, and its status is unknown (exit -1).
type Gen struct {
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
	exit    proc.ExitInfo
}

// NewGen watches the master pid of an orphan generation, which must
// have started at leader clock ticks after boot. Once the master has
// exited, what is left of members gets TERM, then KILL after grace,
// cleanup runs, and Done closes. A master already gone (or its pid reused)
// is Done at once.
func NewGen(app string, run RunGen, members func() []int, grace time.Duration, cleanup func()) *Gen {
	g := &Gen{app: app, prevID: run.ID, pid: run.Group.PGID, dir: run.Dir, started: time.Now(), members: members, grace: grace, cleanup: cleanup, done: make(chan struct{})}
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
func (g *Gen) watch(fd int, err error) {
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
	g.exit = proc.ExitInfo{Code: -1, Time: time.Now()}
	close(g.done)
}

// Done is closed once its master has exited and its leftovers are gone.
func (g *Gen) Done() <-chan struct{} { return g.done }

// Exit is unknown for a process that is not a child: exit -1.
func (g *Gen) Exit() proc.ExitInfo {
	<-g.done
	return g.exit
}

// Exited reports whether Done is closed.
func (g *Gen) Exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the master (nothing once it has exited).
func (g *Gen) Signal(sig syscall.Signal) error {
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
func (g *Gen) Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) (proc.ExitInfo, error) {
	if err := g.Signal(sig); err != nil {
		return proc.ExitInfo{}, err
	}
	if err := proc.AwaitStop(ctx, g.done, timeout, g.Kill); err != nil {
		return proc.ExitInfo{}, fmt.Errorf("%s %w", g, err)
	}
	return g.exit, nil
}

// Kill sends SIGKILL to every live member.
func (g *Gen) Kill() {
	for _, pid := range g.members() {
		_ = unix.Kill(pid, unix.SIGKILL) // it may have exited meanwhile
	}
}

// App names the app it serves.
func (g *Gen) App() string { return g.app }

// PID is its master's pid.
func (g *Gen) PID() int { return g.pid }

// Dir is the release directory it runs in.
func (g *Gen) Dir() string { return g.dir }

// Started is when its successor started tracking it.
func (g *Gen) Started() time.Time { return g.started }

// Workers lists the live children of its master.
func (g *Gen) Workers() []int {
	if g.Exited() {
		return nil
	}
	return proc.Children(g.pid)
}

// Tail is empty: the orphan's output went to its predecessor's pipes.
func (g *Gen) Tail() []string { return nil }

// Traceback is empty, as Tail is.
func (g *Gen) Traceback() (tb []string, exception string) { return nil, "" }

// String names it for humans, by its number in the predecessor's run.
func (g *Gen) String() string {
	return fmt.Sprintf("the previous supervisor's generation %d (pid %d)", g.prevID, g.pid)
}

// ExitReason says how it ended (exit -1: unknown); valid once Done is closed.
func (g *Gen) ExitReason() string { return g.Exit().String() }
