package supervise

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
)

// HandoverVersion is bumped when the state format changes incompatibly; a
// new image refuses state of another version (and the upgrade is refused
// before the exec, by the new binary's dry run).
const HandoverVersion = 1

// Handover is what one supervisor image passes to the next across an
// in-place re-exec: the held sockets and the running generations (their
// processes stay children of the same PID), so no app notices.
type Handover struct {
	Version int                         `json:"version"`
	Sockets map[string][]SocketHandover `json:"sockets"`
	Apps    []AppHandover               `json:"apps"`
}

// SocketHandover is a held listener: its descriptor survives the exec.
type SocketHandover struct {
	Raw string `json:"raw"`
	FD  int    `json:"fd"`
	// Ino identifies a Unix socket path the supervisor bound (and removes at exit).
	Ino uint64 `json:"ino,omitempty"`
	// Hold is the hidden name a Unix socket was bound at (see Socket.hold).
	Hold string `json:"hold,omitempty"`
}

// GenHandover is a running generation.
type GenHandover struct {
	ID        int       `json:"id"`
	PID       int       `json:"pid"`
	PGID      int       `json:"pgid"`
	Started   time.Time `json:"started"`
	Dir       string    `json:"dir"`
	ProbeAddr string    `json:"probe_addr,omitempty"`
	Pidfile   string    `json:"pidfile,omitempty"`
	Adopted   bool      `json:"adopted,omitempty"`
	// OutFD is the read end of the generation's output pipe (-1 if none).
	OutFD int `json:"out_fd"`
}

// AppHandover is one app owner's state.
type AppHandover struct {
	Name       string         `json:"name"`
	Want       bool           `json:"want"`
	Seq        int64          `json:"seq"`
	Gen        *GenHandover   `json:"gen,omitempty"`
	Restarts   int            `json:"restarts"`
	LastExit   *ExitInfo      `json:"last_exit,omitempty"`
	LastReload *ReloadResult  `json:"last_reload,omitempty"`
	Reloads    map[string]int `json:"reloads,omitempty"`
	Healthy    bool           `json:"healthy"`
}

// FDs lists every descriptor the state refers to: they must stay open (not
// CLOEXEC) across the exec.
func (h *Handover) FDs() []int {
	var fds []int
	for _, socks := range h.Sockets {
		for _, s := range socks {
			fds = append(fds, s.FD)
		}
	}
	for _, a := range h.Apps {
		if a.Gen != nil && a.Gen.OutFD >= 0 {
			fds = append(fds, a.Gen.OutFD)
		}
	}
	return fds
}

// Freeze stops every app owner and the reaper where they stand and returns
// their state. While frozen nothing changes: exits stay unreaped (zombies)
// for the next image to collect with their real status. thaw undoes it (the
// exec failed); it is safe to call more than once. A reload in progress
// refuses the freeze (ErrBusy): nothing is frozen then.
func (m *Manager) Freeze(ctx context.Context) (state *Handover, thaw func(), err error) {
	thawCh := make(chan struct{})
	var once bool
	var unlockReaper func()
	thaw = func() {
		if once {
			return
		}
		once = true
		if unlockReaper != nil {
			unlockReaper()
		}
		close(thawCh)
	}
	state = &Handover{Version: HandoverVersion, Sockets: map[string][]SocketHandover{}}
	for _, a := range m.order {
		var st AppHandover
		if err := a.send(ctx, freezeMsg{call: newCall(), state: &st, thaw: thawCh}); err != nil {
			thaw()
			return nil, nil, fmt.Errorf("app %s: %w", a.cfg.Name, err)
		}
		st.Seq = m.genSeq[a.cfg.Name].Load()
		state.Apps = append(state.Apps, st)
	}
	unlockReaper = m.reaper.pause()
	for name, socks := range m.sockets {
		for _, s := range socks {
			fd := s.FD()
			if fd < 0 {
				thaw()
				return nil, nil, fmt.Errorf("app %s: listener %s is closed", name, s.Spec.Raw)
			}
			state.Sockets[name] = append(state.Sockets[name], SocketHandover{Raw: s.Spec.Raw, FD: fd, Ino: s.ino, Hold: s.hold})
		}
	}
	return state, thaw, nil
}

// freeze is the owner's side of Freeze: it records the state, answers, and
// blocks until thawed (or forever, if the process execs). It refuses
// (ErrBusy) while a reload runs or a retired generation is still stopping:
// the next image would not know those generations.
func (a *appOwner) freeze(m freezeMsg) {
	if a.reload != nil || len(a.retiring) > 0 {
		m.reply <- fmt.Errorf("%w: app %s: a reload or restart is in progress", ErrBusy, a.cfg.Name)
		return
	}
	st := m.state
	st.Name = a.cfg.Name
	st.Want = a.wants()
	st.Restarts = a.restarts
	st.LastExit = a.lastExit
	st.LastReload = a.lastReload
	st.Reloads = a.reloads
	st.Healthy = a.health.healthy
	if g, ok := a.gen.(handedOver); ok && !a.gen.Exited() {
		st.Gen = g.handover()
	}
	m.reply <- nil
	<-m.thaw
}

// wants reports whether the app is meant to run (a start is due or holds).
func (a *appOwner) wants() bool {
	switch a.state {
	case StateStopped:
		return false
	case StateStopping:
		return a.thenStart
	}
	return true
}

// handedOver is a generation that can be described to the next image.
type handedOver interface{ handover() *GenHandover }

func (g *Generation) handover() *GenHandover {
	return &GenHandover{ID: g.ID, PID: g.PID, PGID: g.PGID, Started: g.Started, Dir: g.Dir, ProbeAddr: g.ProbeAddr, Pidfile: g.Pidfile, Adopted: g.Adopted, OutFD: g.outFD}
}

// pause holds the reaper still (no wait4) until the returned func is called.
func (r *Reaper) pause() func() {
	r.mu.Lock()
	var done bool
	return func() {
		if !done {
			done = true
			r.mu.Unlock()
		}
	}
}

// ClearCloexec makes fds survive an exec. It returns a func restoring
// CLOEXEC (for a failed exec).
func ClearCloexec(fds []int) (restore func(), err error) {
	var done []int
	restore = func() {
		for _, fd := range done {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC) // the fd is ours and open
		}
	}
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			restore()
			return func() {}, fmt.Errorf("fd %d: clear close-on-exec: %w", fd, err)
		}
		done = append(done, fd)
	}
	return restore, nil
}

// restoreSockets wraps the handed-over listeners, matching them to the
// configuration by their raw address; a listener the configuration no longer
// has is an error (live configuration changes are not an upgrade's job).
func restoreSockets(cfg *config.Config, st *Handover) (map[string][]*Socket, error) {
	out := map[string][]*Socket{}
	for _, app := range cfg.Apps {
		got := st.Sockets[app.Name]
		if len(got) != len(app.Listen) {
			return nil, fmt.Errorf("app %s: %d listeners handed over, configuration has %d", app.Name, len(got), len(app.Listen))
		}
		for i, l := range app.Listen {
			if got[i].Raw != l.Raw {
				return nil, fmt.Errorf("app %s: handed-over listener %s does not match configured %s", app.Name, got[i].Raw, l.Raw)
			}
			s, err := AdoptFD(l, got[i].FD, false)
			if err != nil {
				return nil, fmt.Errorf("app %s: %w", app.Name, err)
			}
			s.ino = got[i].Ino
			s.hold = got[i].Hold
			if s.hold != "" {
				s.Bound = l.Address // AdoptFD named it by its bound (hidden) name
			}
			out[app.Name] = append(out[app.Name], s)
		}
	}
	return out, nil
}

// ValidateHandover checks, without touching any descriptor or process, that
// this image can take over st with cfg (the new binary's dry run).
func ValidateHandover(cfg *config.Config, st *Handover) error {
	if st.Version != HandoverVersion {
		return fmt.Errorf("handover state version %d, this binary speaks %d", st.Version, HandoverVersion)
	}
	var errs []error
	for _, app := range cfg.Apps {
		got := st.Sockets[app.Name]
		if len(got) != len(app.Listen) {
			errs = append(errs, fmt.Errorf("app %s: %d listeners handed over, configuration has %d", app.Name, len(got), len(app.Listen)))
			continue
		}
		for i, l := range app.Listen {
			if got[i].Raw != l.Raw {
				errs = append(errs, fmt.Errorf("app %s: handed-over listener %s does not match configured %s", app.Name, got[i].Raw, l.Raw))
			}
		}
	}
	for _, a := range st.Apps {
		if cfg.App(a.Name) == nil && a.Gen != nil {
			errs = append(errs, fmt.Errorf("app %s runs but is not in the configuration", a.Name))
		}
	}
	return errors.Join(errs...)
}

// restoreApp puts an owner back in the state the previous image left: its
// generation keeps running, unaware. It returns true when the app needs no
// start (it was handed over running, or stopped by request).
func (m *Manager) restoreApp(a *appOwner, st AppHandover) (started bool) {
	a.restarts = st.Restarts
	a.lastExit = st.LastExit
	a.lastReload = st.LastReload
	if st.Reloads != nil {
		a.reloads = st.Reloads
	}
	m.genSeq[a.cfg.Name].Store(st.Seq)
	if st.Gen == nil {
		return !st.Want
	}
	a.gen = m.adoptHandedOver(a.cfg.Name, st.Gen)
	a.state = StateRunning
	a.health.healthy = st.Healthy
	a.publish()
	return true
}

// adoptHandedOver wraps a generation the previous image ran: the reaper
// adopts its pid and its output pipe is read again.
func (m *Manager) adoptHandedOver(app string, g *GenHandover) *Generation {
	exitCh := m.reaper.Adopt(g.PID)
	if _, err := os.Stat("/proc/" + strconv.Itoa(g.PID)); err != nil {
		// Reaped before the hand-over froze the reaper: the status is lost.
		m.reaper.Forget(g.PID)
		ch := make(chan ExitInfo, 1)
		ch <- ExitInfo{Code: -1, Time: time.Now()}
		close(ch)
		exitCh = ch
	}
	var t *tail
	var eof chan struct{}
	if g.OutFD >= 0 {
		_, _ = unix.FcntlInt(uintptr(g.OutFD), unix.F_SETFD, unix.FD_CLOEXEC) // a pipe we own
		t = &tail{max: 40}
		eof = make(chan struct{})
		go capture(os.NewFile(uintptr(g.OutFD), app+" output"), app, g.ID, m.sink, t, eof)
	}
	gen := newGeneration(app, g.ID, g.PID, exitCh, t, eof)
	gen.Started, gen.Dir, gen.ProbeAddr, gen.Pidfile, gen.Adopted, gen.PGID, gen.outFD = g.Started, g.Dir, g.ProbeAddr, g.Pidfile, g.Adopted, g.PGID, g.OutFD
	return gen
}
