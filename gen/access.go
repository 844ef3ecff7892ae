package gen

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/apm"
	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/proc"
)

// accessPipeSize is the capacity asked for each access pipe: about 10,000
// lines, so that a reader stalled for a moment costs no line.
const accessPipeSize = 1 << 20

// accessPipe is one generation's access lines: the master gets the write
// end (after its listeners), an apm reader the read end.
type accessPipe struct {
	r     *os.File
	fd, w int
}

// routed reports whether app's generations get an access pipe: a Gunicorn
// app with route_metrics on, in a Spawner given a route set.
func (s *Spawner) routed(app *config.App) bool {
	return s.Routes != nil && app.Kind == config.KindGunicorn && app.Routes.Enabled
}

// withAccessPipe writes the logger class into app's run directory, adds
// it to spec's argv (gunicorn.WithAccessLogger) and an access pipe to spec
// (its write end the master's last descriptor, named in its environment).
// It returns nil and leaves spec alone for an app without route metrics,
// or when the pipe or the module cannot be made (logged: the generation
// runs without them, as it would without the feature). The error names the
// app when its pipe cannot be set up after it was made.
func (s *Spawner) withAccessPipe(app *config.App, spec *proc.Spec) (*accessPipe, error) {
	if !s.routed(app) {
		return nil, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		s.Logger.Warn("access pipe: route metrics off for this generation", "app", app.Name, "err", err)
		return nil, nil
	}
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, accessPipeSize); err != nil {
		s.Logger.Debug("access pipe size", "app", app.Name, "err", err)
	}
	// The master's end blocks until its logger class sets O_NONBLOCK on it.
	if err := unix.SetNonblock(fds[1], false); err != nil {
		closeFDs(fds[:]...)
		return nil, fmt.Errorf("app %s: access pipe: %w", app.Name, err)
	}
	if err := gunicorn.WriteAccessModule(s.RunDir, app); err != nil {
		closeFDs(fds[:]...)
		s.Logger.Warn("access logger: route metrics off for this generation", "app", app.Name, "err", err)
		return nil, nil
	}
	spec.Argv = gunicorn.WithAccessLogger(spec.Argv)
	spec.Files = append(spec.Files, fds[1])
	spec.Env = gunicorn.AccessEnv(spec.Env, s.RunDir, app, 3+len(spec.Files)-1)
	return &accessPipe{r: os.NewFile(uintptr(fds[0]), "access:"+app.Name), fd: fds[0], w: fds[1]}, nil
}

// closeFDs closes descriptors the supervisor no longer needs.
func closeFDs(fds ...int) {
	for _, fd := range fds {
		_ = unix.Close(fd) // ours, open: nothing to do about a failure
	}
}

// accessReader is the reader of one access pipe; done is closed once it
// has read to EOF and closed the pipe.
type accessReader struct {
	fd   int
	done chan struct{}
}

// handoverFD returns the read end to hand over to the next image: -1 for
// none, or once the reader closed it (the number may name another file
// by then).
func (r *accessReader) handoverFD() int {
	if r == nil {
		return -1
	}
	select {
	case <-r.done:
		return -1
	default:
		return r.fd
	}
}

// startReading hands p's read end to a reader for generation id of app
// (master pid, release dir), once the master holds the write end; the
// reader ends at EOF, when the master and its workers are gone. With
// failed set (the fork did not happen), it only closes p. It returns the
// reader, nil when there is none.
func (s *Spawner) startReading(app *config.App, p *accessPipe, id, pid int, dir string, failed bool) *accessReader {
	if p == nil {
		return nil
	}
	closeFDs(p.w)
	if failed {
		_ = p.r.Close() // never read
		return nil
	}
	return s.readAccess(app.Name, p.r, p.fd, s.routeGen(app, id, pid, dir))
}

// readAccess reads f (descriptor fd) into g until EOF, then closes it.
func (s *Spawner) readAccess(app string, f *os.File, fd int, g *apm.Gen) *accessReader {
	r := &accessReader{fd: fd, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer func() { _ = f.Close() }() // read to EOF
		if err := g.Read(f); err != nil {
			s.Logger.Warn("access pipe", "app", app, "generation", g.ID, "err", err)
		}
	}()
	return r
}

// adoptAccess reads the access pipe a previous image handed over with
// generation id of app (master pid, release dir; fd -1 when there is
// none). With route metrics off now the pipe is closed and the workers'
// lines are dropped (nil).
func (s *Spawner) adoptAccess(app *config.App, fd, id, pid int, dir string) *accessReader {
	if fd < 0 {
		return nil
	}
	if !s.routed(app) {
		closeFDs(fd)
		return nil
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		s.Logger.Warn("adopt access pipe", "app", app.Name, "generation", id, "err", err)
	}
	unix.CloseOnExec(fd)
	f := os.NewFile(uintptr(fd), "access:"+app.Name)
	return s.readAccess(app.Name, f, fd, s.routeGen(app, id, pid, dir))
}

// routeGen registers generation id of app (master pid, release dir) for
// route metrics; its lines come off its own pipe, or off the pipe it
// inherited (a USR2 master). Finish ends it. nil for an app without route
// metrics.
func (s *Spawner) routeGen(app *config.App, id, pid int, dir string) *apm.Gen {
	if !s.routed(app) {
		return nil
	}
	return s.Routes.Configure(app).Gen(id, pid, dir, func() (apm.Usage, bool) { return workerUsage(pid) })
}

// endRouteGen ends generation id of app for route metrics (its master
// exited).
func (s *Spawner) endRouteGen(app string, id int) {
	if s.Routes == nil {
		return
	}
	if a := s.Routes.App(app); a != nil {
		a.End(id)
	}
}

// workerUsage sums the CPU time and resident memory of master pid's live
// children (its workers); ok is false when it has none.
func workerUsage(pid int) (apm.Usage, bool) {
	var u apm.Usage
	for _, k := range proc.Children(pid) {
		st, err := proc.ReadStat(k)
		if err != nil {
			continue // exited since the listing
		}
		u.CPU += time.Duration(st.CPUTime() * float64(time.Second))
		u.RSS += uint64(st.ResidentMemory())
		u.Workers++
	}
	return u, u.Workers > 0
}
