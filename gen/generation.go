package gen

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/contain"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/upgrade"
)

// Generation is one started instance of an app: a Gunicorn master (with its
// workers) or a process. Its exit is delivered by the reaper; Done is closed
// once it has exited and its exit is recorded.
type Generation struct {
	App     string
	ID      int
	PID     int
	Started time.Time
	// Dir is the resolved working directory (the release path).
	Dir string
	// ProbeAddr is the private loopback listener only this generation holds
	// ("" for a process app); health checks of this generation go there.
	ProbeAddr string
	// PGID is the process group of the main process and its workers (a USR2
	// master stays in the group of the master that forked it).
	PGID int
	// Pidfile is the Gunicorn master's pidfile ("" for a process).
	Pidfile string
	// FollowsLink is true for a Gunicorn master started with PWD = the app's
	// `directory` while that resolved to Dir: Gunicorn then remembers the
	// link, and a USR2 re-exec runs in whatever release it points at by then.
	// reload.Choose downgrades usr2 to swap for a master that does not. A
	// self-upgrade hands it over.
	FollowsLink bool

	done chan struct{}
	exit proc.ExitInfo
	// out is the captured output (nil: not captured); outEOF is closed once
	// it reached EOF (nil: not known, for output shared with another
	// generation).
	out    *logs.Output
	outEOF <-chan struct{}
	// outFD are the read ends of the output pipes (handed over on upgrade).
	outFD outFDs
	// stopAsked is set once the supervisor asked the generation to stop or
	// killed it: its exit is then not a crash.
	stopAsked atomic.Bool
	// socks are the held sockets of a Gunicorn master (nil for a process):
	// its first stop signal goes through listen.SignalStop.
	socks []*listen.Socket
	// stopSent is set by the first stop signal.
	stopSent atomic.Bool
	// access reads its access pipe (nil: none); a USR2 master shares its
	// parent's.
	access *accessReader
	// home is where the processes it detaches are found (see
	// contain.Home); leaving counts it out of its home once (see
	// Spawner.Finish).
	home    contain.Home
	leaving sync.Once
}

// newGeneration watches exitCh and closes done when the process has exited.
func newGeneration(app string, id, pid int, exitCh <-chan proc.ExitInfo, out *logs.Output, outEOF <-chan struct{}) *Generation {
	g := &Generation{App: app, ID: id, PID: pid, Started: time.Now(), done: make(chan struct{}), out: out, outEOF: outEOF, outFD: noOutFDs}
	go func() {
		info, ok := <-exitCh
		if !ok {
			info = proc.ExitInfo{Code: -1, Time: time.Now()}
		}
		g.exit = info
		close(g.done)
	}()
	return g
}

// Info is what an app's owner reads of a generation.
type Info struct {
	ID      int
	PID     int
	Started time.Time
	// Dir is the release directory it runs in.
	Dir string
	// ProbeAddr is its private health-check listener ("" for none).
	ProbeAddr string
	// FollowsLink: a USR2 re-exec of it runs in the release the link points at.
	FollowsLink bool
}

// Info describes g for snapshots, logs and health checks.
func (g *Generation) Info() Info {
	return Info{ID: g.ID, PID: g.PID, Started: g.Started, Dir: g.Dir, ProbeAddr: g.ProbeAddr, FollowsLink: g.FollowsLink}
}

// String names the generation for humans.
func (g *Generation) String() string {
	return fmt.Sprintf("generation %d (pid %d)", g.ID, g.PID)
}

// ExitReason implements reload.Gen.
func (g *Generation) ExitReason() string { return g.Exit().String() }

// Done is closed when the generation's main process has exited.
func (g *Generation) Done() <-chan struct{} { return g.done }

// Exit returns how the main process ended; valid once Done is closed.
func (g *Generation) Exit() proc.ExitInfo {
	<-g.done
	return g.exit
}

// Exited reports whether Done is closed.
func (g *Generation) Exited() bool {
	select {
	case <-g.done:
		return true
	default:
		return false
	}
}

// Signal sends sig to the main process. The first stop signal (TERM, INT,
// QUIT) to a Gunicorn master that will unlink its sockets' names (one not
// in a USR2 pair, see gunicorn.UnlinksOnStop) waits for its turn on the
// app's held Unix sockets (see listen.SignalStop), so that the master finds
// the name it unlinks and completes its graceful stop.
func (g *Generation) Signal(sig syscall.Signal) error {
	if g.Exited() {
		return nil
	}
	send := func() error {
		if err := unix.Kill(g.PID, sig); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("%s generation %d: signal %d to pid %d: %w", g.App, g.ID, sig, g.PID, err)
		}
		return nil
	}
	stop := sig == syscall.SIGTERM || sig == syscall.SIGINT || sig == syscall.SIGQUIT
	if stop {
		g.stopAsked.Store(true)
	}
	if !stop || len(g.socks) == 0 || !g.stopSent.CompareAndSwap(false, true) || !gunicorn.UnlinksOnStop(g.PID, g.Pidfile) {
		return send()
	}
	return listen.SignalStop(g.socks, send, g.done, 2*time.Second)
}

// Stop asks the generation to stop with sig, waits up to timeout (or until
// ctx ends), then KILLs the main process and every descendant and waits up to
// 5 s more (proc.AwaitStop). It returns the exit, or an error if the process outlived
// even the KILL (it is then left to the reaper). Safe to call concurrently and
// more than once.
func (g *Generation) Stop(ctx context.Context, sig syscall.Signal, timeout time.Duration) (proc.ExitInfo, error) {
	g.stopAsked.Store(true)
	if err := g.Signal(sig); err != nil {
		return proc.ExitInfo{}, err
	}
	if err := proc.AwaitStop(ctx, g.done, timeout, g.Kill); err != nil {
		return proc.ExitInfo{}, fmt.Errorf("%s generation %d (pid %d) %w", g.App, g.ID, g.PID, err)
	}
	return g.exit, nil
}

// Kill sends SIGKILL to the main process and all its descendants.
func (g *Generation) Kill() {
	g.stopAsked.Store(true)
	if !g.Exited() {
		proc.SignalTree(g.PID, unix.SIGKILL)
	}
}

// Workers returns the live children of the main process (Gunicorn workers,
// and a USR2 child master while one exists).
func (g *Generation) Workers() []int {
	if g.Exited() {
		return nil
	}
	return proc.Children(g.PID)
}

// Handover describes g to the next image of the supervisor (see
// upgrade.GenHandover): its identity, and the read ends of its output and
// access pipes still open (-1 for none).
func (g *Generation) Handover() *upgrade.GenHandover {
	fds := g.handoverFDs()
	return &upgrade.GenHandover{ID: g.ID, PID: g.PID, PGID: g.PGID, Started: g.Started, Dir: g.Dir, ProbeAddr: g.ProbeAddr, Pidfile: g.Pidfile, FollowsLink: g.FollowsLink,
		OutFD: fds.stdout, ErrFD: fds.stderr, AccessFD: g.access.handoverFD()}
}
