package listen

import (
	"errors"
	"log/slog"
	"sync"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
)

// Held are the sockets an app's table takes instead of binding them:
// inherited from systemd, handed over by a self-upgrade, or taken from a
// dead predecessor's orphans. Sockets are in the order of the app's listen
// list, Steering has one entry per socket (nil or missing: shared), and Why
// says where they came from (logged with each listener's mode).
type Held struct {
	Sockets  []*Socket
	Steering []Steering
	Why      string
}

// Close closes the held sockets and their steering, not yet in a table, and
// joins their errors (a nil Held has nothing to close).
func (h *Held) Close() error {
	if h == nil {
		return nil
	}
	var errs []error
	for _, g := range h.Steering {
		if g != nil {
			errs = append(errs, g.Close())
		}
	}
	return errors.Join(append(errs, CloseAll(h.Sockets))...)
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

// Open returns app's table and logs each listener's steering mode and why.
// With held it is a table of the held sockets and their steering (no
// error). Without, it binds app's listeners with the steering app.Steering
// and the kernel allow (see OpenTable); bpfWhy is asked only for an app
// with a TCP listener and steering "auto". Errors are OpenTable's.
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
		why = bpfWhy()
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

// hasTCP reports whether app has a TCP listener.
func hasTCP(app *config.App) bool {
	for _, l := range app.Listen {
		if l.Network == config.NetTCP {
			return true
		}
	}
	return false
}
