package listen

import (
	"errors"
	"fmt"

	"github.com/gunisup/supervisor/config"
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
