package listen

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// OpenTable binds app's listeners and steers them: a TCP one by BPF (its
// held Socket is the BPF group's holder) unless bpfWhy says why BPF is
// unavailable ("": it is), a Unix one by rename; with steering = "shared"
// every listener is one shared socket. It returns the table and, per
// listener, why it is shared ("" for a steered one). It is meant for
// sockets bound now: inherited or handed-over ones go to NewTable. On
// error it closes what it opened and names the listener's file, line and
// key, as OpenApp does.
func OpenTable(app *config.App, bpfWhy string) (*Table, []string, error) {
	var socks []*Socket
	var gens []Steering
	var whys []string
	for _, l := range app.Listen {
		s, g, why, err := openSteered(app, l, bpfWhy)
		if err != nil {
			if l.File != "" {
				err = l.Wrap(err)
			} else {
				err = fmt.Errorf("app %s: %w", app.Name, err)
			}
			return nil, nil, errors.Join(err, NewTable(socks, gens).Close())
		}
		socks, gens, whys = append(socks, s), append(gens, g), append(whys, why)
	}
	return NewTable(socks, gens), whys, nil
}

// openSteered binds l and returns its held socket, its steering (nil:
// shared) and, for a shared one, why it is not steered.
func openSteered(app *config.App, l config.Listener, bpfWhy string) (*Socket, Steering, string, error) {
	if app.Steering == config.SteeringShared {
		s, err := Bind(l)
		return s, nil, `steering = "shared"`, err
	}
	if l.Network == config.NetTCP && bpfWhy == "" {
		g, held, err := BindSteered(l)
		if err != nil {
			return nil, nil, "", err
		}
		return held, g, "", nil
	}
	s, err := Bind(l)
	if err != nil || l.Network != config.NetUnix {
		return s, nil, bpfWhy, err
	}
	u, err := SteerUnix(s)
	if err != nil {
		return nil, nil, "", errors.Join(err, s.Close())
	}
	return s, u, "", nil
}

// SteerProbe returns a function that says why BPF steering is unavailable
// here ("" when it is available), probing the kernel on its first call only.
func SteerProbe() func() string {
	return sync.OnceValue(func() string {
		if err := steer.Available(); err != nil {
			return err.Error()
		}
		return ""
	})
}

// WhyNoBPF is bpfWhy's answer, or without one (nil) the kernel's, probed
// now (see SteerProbe): "" when BPF steering can be used.
func WhyNoBPF(bpfWhy func() string) string {
	if bpfWhy == nil {
		return SteerProbe()()
	}
	return bpfWhy()
}

// Open returns app's table and logs each listener's steering mode and why.
// With held it is a table of the held sockets and their steering (no
// error). Without, it binds app's listeners with the steering app.Steering
// and the kernel allow (see OpenTable); bpfWhy (nil: probe the kernel, see
// WhyNoBPF) is asked only for an app with a TCP listener and steering
// "auto". Errors are OpenTable's.
func Open(app *config.App, held *Held, bpfWhy func() string, logger *slog.Logger) (*Table, error) {
	if held != nil {
		for i, l := range app.Listen {
			mode := steer.ModeShared
			if i < len(held.Steering) && held.Steering[i] != nil {
				mode = held.Steering[i].Mode()
			}
			logger.Info("listener steering", "app", app.Name, "listener", l.Raw, "mode", mode, "why", held.Why)
		}
		return NewTable(held.Sockets, held.Steering), nil
	}
	why := ""
	if app.Steering == config.SteeringAuto && hasTCP(app) {
		why = WhyNoBPF(bpfWhy)
	}
	t, whys, err := OpenTable(app, why)
	if err != nil {
		return nil, err
	}
	for i, e := range t.Entries() {
		logger.Info("listener steering", "app", app.Name, "listener", e.Socket.Spec.Raw, "mode", e.Mode(), "why", whys[i])
	}
	return t, nil
}

// Reopen binds app's listeners again once t, its table, is closed (see
// Table.Close), into a new table steered as at start (see Open), each TCP
// listener at the address t's socket was bound at (a configured port 0
// keeps the port the kernel chose). Errors are Open's.
func (t *Table) Reopen(app *config.App, bpfWhy func() string, logger *slog.Logger) (*Table, error) {
	return Open(boundAgain(app, t.Entries()), nil, bpfWhy, logger)
}

// boundAgain returns a copy of app whose TCP listeners name the address
// their closed entries were bound at.
func boundAgain(app *config.App, closed []Entry) *config.App {
	c := *app
	c.Listen = slices.Clone(app.Listen)
	for i := range c.Listen {
		l := &c.Listen[i]
		if l.Network == config.NetTCP && i < len(closed) && closed[i].Socket.Spec.Raw == l.Raw {
			l.Address = closed[i].Socket.Bound
		}
	}
	return &c
}

// hasTCP reports whether app has a TCP listener.
func hasTCP(app *config.App) bool {
	for _, l := range app.Listen {
		if l.Network == config.NetTCP {
			return true
		}
	}
	return false
}
