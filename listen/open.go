package listen

import (
	"errors"
	"fmt"

	"github.com/gunisup/supervisor/config"
)

// Inherited finds a socket systemd passed by its name or position and
// returns its descriptor.
type Inherited func(name string) (fd int, err error)

// HasSystemd reports whether any of app's listeners is a `systemd:NAME` one.
func HasSystemd(app *config.App) bool {
	for _, l := range app.Listen {
		if l.Network == config.NetSystemd {
			return true
		}
	}
	return false
}

// OpenApp returns app's listeners in the order of its listen list: the
// `systemd:NAME` ones adopted from inherited (nil: systemd passed none, which
// makes them an error), the others bound. On error it closes what it opened
// and returns a *config.Error naming the file, line and key of the listener
// that failed (config.Listener.Wrap), or the app for a listener without a
// position.
func OpenApp(app *config.App, inherited Inherited) ([]*Socket, error) {
	var socks []*Socket
	for _, l := range app.Listen {
		s, err := open(l, inherited)
		if err != nil && l.File == "" {
			err = fmt.Errorf("app %s: %w", app.Name, err) // a listener built in code, not read from a file
		} else if err != nil {
			err = l.Wrap(err)
		}
		if err != nil {
			return nil, errors.Join(err, CloseAll(socks))
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// open binds l, or adopts it from inherited for a `systemd:NAME` listener.
func open(l config.Listener, inherited Inherited) (*Socket, error) {
	if l.Network != config.NetSystemd {
		return Bind(l)
	}
	if inherited == nil {
		return nil, fmt.Errorf("listen %s: the supervisor was not given this socket by systemd", l.Raw)
	}
	fd, err := inherited(l.Address)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	return AdoptFD(l, fd, false)
}

// CloseAll closes every socket of socks and joins their errors.
func CloseAll(socks []*Socket) error {
	var errs []error
	for _, s := range socks {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
