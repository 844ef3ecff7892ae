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
// and returns an error naming the app.
func OpenApp(app *config.App, inherited Inherited) ([]*Socket, error) {
	var socks []*Socket
	fail := func(err error) ([]*Socket, error) {
		return nil, errors.Join(fmt.Errorf("app %s: %w", app.Name, err), CloseAll(socks))
	}
	for _, l := range app.Listen {
		if l.Network != config.NetSystemd {
			s, err := Bind(l)
			if err != nil {
				return fail(err)
			}
			socks = append(socks, s)
			continue
		}
		if inherited == nil {
			return fail(fmt.Errorf("listen %s: the supervisor was not given this socket by systemd", l.Raw))
		}
		fd, err := inherited(l.Address)
		if err != nil {
			return fail(fmt.Errorf("listen %s: %w", l.Raw, err))
		}
		s, err := AdoptFD(l, fd, false)
		if err != nil {
			return fail(err)
		}
		socks = append(socks, s)
	}
	return socks, nil
}

// CloseAll closes every socket of socks and joins their errors.
func CloseAll(socks []*Socket) error {
	var errs []error
	for _, s := range socks {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
