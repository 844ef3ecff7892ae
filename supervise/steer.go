package supervise

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/listen/steer"
)

// steering is how connections reach the generations of every app: for
// each app, one entry per held socket (in the order of m.sockets[app]), a
// *listen.GenSockets where that TCP listener is steered by BPF, nil where
// all generations share the held socket. Only NewManager writes it.
type steering map[string][]*listen.GenSockets

// steerProbe returns a function that says why BPF steering is unavailable
// here ("" when it is available), probing the kernel on its first call only.
func steerProbe() func() string {
	return sync.OnceValue(func() string {
		if err := steer.Available(); err != nil {
			return err.Error()
		}
		return ""
	})
}

// openSteered opens app's listeners, its TCP ones steered by BPF: the
// holder of each steered listener is the Socket held for it. It is used
// only for apps whose sockets are neither inherited from systemd nor handed
// over by a self-upgrade (those share one socket). why says why BPF is
// unavailable ("" if it is); then, or with steering = "shared", every
// listener is bound as a shared one.
func openSteered(app *config.App, why string, logger *slog.Logger) ([]*Socket, []*listen.GenSockets, error) {
	mode, reason := steer.ModeBPF, ""
	switch {
	case app.Steering == config.SteeringShared:
		mode, reason = steer.ModeShared, `steering = "shared"`
	case why != "":
		mode, reason = steer.ModeShared, why
	}
	var socks []*Socket
	var gens []*listen.GenSockets
	// fail names the file, line and key of the listener l that failed (the
	// app for a listener built in code), as listen.OpenApp does, and closes
	// what was opened.
	fail := func(l config.Listener, err error) ([]*Socket, []*listen.GenSockets, error) {
		if l.File != "" {
			err = l.Wrap(err)
		} else {
			err = fmt.Errorf("app %s: %w", app.Name, err)
		}
		for _, g := range gens {
			if g != nil {
				err = errors.Join(err, g.Close())
			}
		}
		return nil, nil, errors.Join(err, listen.CloseAll(socks))
	}
	for _, l := range app.Listen {
		if mode == steer.ModeBPF && l.Network == config.NetTCP {
			g, held, err := listen.BindSteered(l)
			if err != nil {
				return fail(l, err)
			}
			socks, gens = append(socks, held), append(gens, g)
			logger.Info("listener steering", "app", app.Name, "listener", l.Raw, "mode", steer.ModeBPF)
			continue
		}
		s, err := listen.Bind(l)
		if err != nil {
			return fail(l, err)
		}
		socks, gens = append(socks, s), append(gens, nil)
		why := reason
		if why == "" {
			why = "unix sockets are switched by the shared socket"
		}
		logger.Info("listener steering", "app", app.Name, "listener", l.Raw, "mode", steer.ModeShared, "why", why)
	}
	return socks, gens, nil
}

// openListeners opens app's listeners (see openSteered) into m.sockets and
// m.steered; why reports why BPF is unavailable (probed at most once).
func (m *Manager) openListeners(app *config.App, why func() string) error {
	w := ""
	if app.Steering == config.SteeringAuto && hasTCP(app) {
		w = why()
	}
	socks, gens, err := openSteered(app, w, m.logger)
	if err != nil {
		return err
	}
	m.sockets[app.Name], m.steered[app.Name] = socks, gens
	return nil
}

// logHeldSteering logs the mode of app's listeners that were inherited
// (systemd) or handed over (self-upgrade): always shared.
func (m *Manager) logHeldSteering(app *config.App, upgraded bool) {
	why := "inherited from systemd"
	if upgraded {
		why = "handed over by a self-upgrade"
	}
	for _, l := range app.Listen {
		m.logger.Info("listener steering", "app", app.Name, "listener", l.Raw, "mode", steer.ModeShared, "why", why)
	}
}

func hasTCP(app *config.App) bool {
	for _, l := range app.Listen {
		if l.Network == config.NetTCP {
			return true
		}
	}
	return false
}

// genFD returns the descriptor generation id of app gets for its i-th
// held socket s: its own steered socket, or the shared one.
func (m *Manager) genFD(app string, id, i int, s *Socket) (int, error) {
	if g := m.steerOf(app, i); g != nil {
		return g.Add(id)
	}
	fd := s.FD()
	if fd < 0 {
		return -1, fmt.Errorf("app %s: listener %s is closed", app, s.Spec.Raw)
	}
	return fd, nil
}

// steeredOf returns app's steered listeners (nil: all shared). An update
// that gives the app new sockets drops them (see dropSteering).
func (m *Manager) steeredOf(app string) []*listen.GenSockets {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.steered[app]
}

// dropSteering forgets app's steered listeners, whose held sockets an
// update replaces, and returns them for the caller to close once the app
// runs on the new sockets (which it then shares between generations).
// The caller holds m.mu.
func (m *Manager) dropSteering(app string) []*listen.GenSockets {
	gs := m.steered[app]
	delete(m.steered, app)
	return gs
}

// steerOf returns the steering of app's i-th held socket, or nil (shared).
func (m *Manager) steerOf(app string, i int) *listen.GenSockets {
	if gs := m.steeredOf(app); i < len(gs) {
		return gs[i]
	}
	return nil
}

// serveGen makes generation id of app receive the new connections of every
// steered listener.
func (m *Manager) serveGen(app string, id int) error {
	var errs []error
	for _, g := range m.steeredOf(app) {
		if g != nil {
			errs = append(errs, g.Serve(id))
		}
	}
	return errors.Join(errs...)
}

// releaseGen records that generation id of app exited (see GenSockets.Release).
func (m *Manager) releaseGen(app string, id int) {
	for _, g := range m.steeredOf(app) {
		if g == nil {
			continue
		}
		if err := g.Release(id); err != nil {
			m.logger.Warn("release generation socket", "app", app, "generation", id, "err", err)
		}
	}
}

// shareGen makes a USR2 child (to) use its parent's (from) steered sockets.
func (m *Manager) shareGen(app string, from, to int) {
	for _, g := range m.steeredOf(app) {
		if g != nil {
			g.Share(from, to)
		}
	}
}

// queuePoll is how often quiesce reads a retiring generation's queues.
const queuePoll = 5 * time.Millisecond

// quiesce returns once no connection waits on generation id's own steered
// sockets (it keeps accepting after the switch until then), or when ctx
// ends. A socket that cannot be read counts as empty.
func (m *Manager) quiesce(ctx context.Context, app string, id int) {
	for _, g := range m.steeredOf(app) {
		if g == nil || g.Serving(id) {
			continue
		}
		for {
			n, err := g.QueueDepth(id)
			if err != nil || n == 0 {
				break
			}
			t := time.NewTimer(queuePoll)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
		}
	}
}

// closeSteering closes every generation socket and frees the BPF objects.
func (m *Manager) closeSteering() {
	m.mu.RLock()
	apps := make([]string, 0, len(m.steered))
	for app := range m.steered {
		apps = append(apps, app)
	}
	m.mu.RUnlock()
	for _, app := range apps {
		m.shutSteered(app)
	}
}

// shutSteered closes the supervisor's copies of app's generation sockets
// (at shutdown, as Socket.Shut does for held ones): the generations keep
// accepting on theirs, and once they have exited new clients are refused
// instead of waiting in a queue nobody accepts from. Safe twice.
func (m *Manager) shutSteered(app string) {
	for _, g := range m.steeredOf(app) {
		if g == nil {
			continue
		}
		if err := g.Close(); err != nil {
			m.logger.Warn("close steered listener", "app", app, "err", err)
		}
	}
}

// steeringMode names how connections reach app's i-th held socket.
func (m *Manager) steeringMode(app string, i int) steer.Mode {
	if m.steerOf(app, i) != nil {
		return steer.ModeBPF
	}
	return steer.ModeShared
}
