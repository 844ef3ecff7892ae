package config

import "net"

// supervisorClaims reports the supervisor's own sockets where an app
// listens too: the metrics address ([supervisor] http, checked against
// every TCP listener, wildcards included) and the control socket's path
// (against Unix listeners). c holds every app listener already; owner
// maps a listener's key to its app. Each error names both keys and the
// app listener's line.
func (p *parser) supervisorClaims(c *claims, s Supervisor, owner map[string]string) {
	var own []Listener
	if host, port, err := net.SplitHostPort(s.HTTP); err == nil && s.HTTP != "" {
		hosts := []string{host}
		if host == "" { // net.Listen binds every address of both families
			hosts = []string{"0.0.0.0", "::"}
		}
		for _, h := range hosts {
			own = append(own, p.ownListener("http", s.HTTP, NetTCP, net.JoinHostPort(h, port)))
		}
	}
	if s.ControlSocket != "" {
		own = append(own, p.ownListener("control_socket", s.ControlSocket, NetUnix, s.ControlSocket))
	}
	for _, l := range own {
		prev, same, conflict := c.claim(l)
		switch {
		case !conflict:
		case same:
			p.errs.add(l.errorf("%q is also the listen address %q of app %q (%s, line %d): both cannot be bound", l.Raw, prev.Raw, owner[prev.Key], prev.Key, prev.Line))
		default:
			p.errs.add(l.errorf("%q overlaps the listen address %q of app %q (%s, line %d): a wildcard address and another one on the same port cannot both be bound", l.Raw, prev.Raw, owner[prev.Key], prev.Key, prev.Line))
		}
	}
}

// ownListener is the supervisor's socket at [supervisor] key, written as
// raw, as a Listener for claims.
func (p *parser) ownListener(key, raw string, network Network, addr string) Listener {
	k := []string{"supervisor", key}
	f, l := p.pos(k)
	return Listener{Raw: raw, Network: network, Address: addr, File: f, Line: l, Key: keyString(k)}
}
