package supervise

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
	r *os.File
	w int
}

// routed reports whether app's generations get an access pipe: a Gunicorn
// app with route_metrics on, in a Manager given a route set.
func (m *Manager) routed(app *config.App) bool {
	return m.routes != nil && app.Kind == config.KindGunicorn && app.Routes.Enabled
}

// withAccessPipe writes the logger class into app's run directory, adds
// it to spec's argv (gunicorn.WithAccessLogger) and an access pipe to spec
// (its write end the master's last descriptor, named in its environment).
// It returns nil and leaves spec alone for an app without route metrics,
// or when the pipe or the module cannot be made (logged: the generation
// runs without them, as it would without the feature). The error names the
// app when its pipe cannot be set up after it was made.
func (m *Manager) withAccessPipe(app *config.App, spec *proc.Spec) (*accessPipe, error) {
	if !m.routed(app) {
		return nil, nil
	}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		m.logger.Warn("access pipe: route metrics off for this generation", "app", app.Name, "err", err)
		return nil, nil
	}
	if _, err := unix.FcntlInt(uintptr(fds[0]), unix.F_SETPIPE_SZ, accessPipeSize); err != nil {
		m.logger.Debug("access pipe size", "app", app.Name, "err", err)
	}
	// The master's end blocks until its logger class sets O_NONBLOCK on it.
	if err := unix.SetNonblock(fds[1], false); err != nil {
		closeFDs(fds[:]...)
		return nil, fmt.Errorf("app %s: access pipe: %w", app.Name, err)
	}
	if err := gunicorn.WriteAccessModule(m.runDir, app); err != nil {
		closeFDs(fds[:]...)
		m.logger.Warn("access logger: route metrics off for this generation", "app", app.Name, "err", err)
		return nil, nil
	}
	spec.Argv = gunicorn.WithAccessLogger(spec.Argv)
	spec.Files = append(spec.Files, fds[1])
	spec.Env = gunicorn.AccessEnv(spec.Env, m.runDir, app, 3+len(spec.Files)-1)
	return &accessPipe{r: os.NewFile(uintptr(fds[0]), "access:"+app.Name), w: fds[1]}, nil
}

// closeFDs closes descriptors the supervisor no longer needs.
func closeFDs(fds ...int) {
	for _, fd := range fds {
		_ = unix.Close(fd) // ours, open: nothing to do about a failure
	}
}

// startReading hands p's read end to a reader for generation id of app
// (master pid, release dir), once the master holds the write end; the
// reader ends at EOF, when the master and its workers are gone. With
// failed set (the fork did not happen), it only closes p.
func (m *Manager) startReading(app *config.App, p *accessPipe, id, pid int, dir string, failed bool) {
	if p == nil {
		return
	}
	closeFDs(p.w)
	if failed {
		_ = p.r.Close() // never read
		return
	}
	g := m.routeGen(app, id, pid, dir)
	go func() {
		defer func() { _ = p.r.Close() }() // read to EOF
		if err := g.Read(p.r); err != nil {
			m.logger.Warn("access pipe", "app", app.Name, "generation", id, "err", err)
		}
	}()
}

// routeGen registers generation id of app (master pid, release dir) for
// route metrics; its lines come off its own pipe, or off the pipe it
// inherited (a USR2 master). Manager.afterExit ends it. nil for an app
// without route metrics.
func (m *Manager) routeGen(app *config.App, id, pid int, dir string) *apm.Gen {
	if !m.routed(app) {
		return nil
	}
	return m.routes.Configure(app).Gen(id, pid, dir, func() (apm.Usage, bool) { return workerUsage(pid) })
}

// endRouteGen ends generation id of app for route metrics (its master
// exited).
func (m *Manager) endRouteGen(app string, id int) {
	if m.routes == nil {
		return
	}
	if a := m.routes.App(app); a != nil {
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

// swapped starts the comparison of generation newID of app with oldID,
// which it replaced now; it returns the comparison window (0: none).
func (m *Manager) swapped(app string, oldID, newID int) time.Duration {
	if m.routes == nil {
		return 0
	}
	if a := m.routes.App(app); a != nil {
		return a.Swapped(oldID, newID)
	}
	return 0
}

// comparison is app's latest comparison line ("" for none).
func (m *Manager) comparison(app string) string {
	if m.routes == nil {
		return ""
	}
	return m.routes.Comparison(app)
}
