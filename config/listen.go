package config

import (
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strconv"
	"strings"
)

// maxUnixPath is the longest socket path that fits sun_path with its NUL.
const maxUnixPath = 107

// parseListen parses one listen address: tcp://HOST:PORT (HOST an IP literal,
// IPv6 in brackets, or "localhost"), unix:///ABS/PATH, or systemd:NAME (a
// LISTEN_FDNAMES name or a decimal position). Address is normalised so that
// two spellings of one socket compare equal. Mode, Owner, Group and Backlog
// are left for the caller.
func parseListen(raw string) (Listener, error) {
	l := Listener{Raw: raw}
	switch {
	case strings.HasPrefix(raw, "tcp://"):
		l.Network = NetTCP
		addr, err := normaliseTCP(strings.TrimPrefix(raw, "tcp://"))
		if err != nil {
			return l, err
		}
		l.Address = addr
	case strings.HasPrefix(raw, "unix://"):
		l.Network = NetUnix
		p := strings.TrimPrefix(raw, "unix://")
		if !filepath.IsAbs(p) {
			return l, fmt.Errorf("unix socket path %q must be absolute (unix:///path)", p)
		}
		p = filepath.Clean(p)
		if len(p) > maxUnixPath {
			return l, fmt.Errorf("unix socket path is %d bytes long, the limit is %d", len(p), maxUnixPath)
		}
		l.Address = p
	case strings.HasPrefix(raw, "systemd:"):
		l.Network = NetSystemd
		name := strings.TrimPrefix(raw, "systemd:")
		if name == "" {
			return l, fmt.Errorf("systemd socket needs a name or index (systemd:NAME)")
		}
		if isDigits(name) {
			n, err := strconv.Atoi(name)
			if err != nil {
				return l, fmt.Errorf("systemd socket index %q: %w", name, err)
			}
			name = strconv.Itoa(n)
		} else if err := checkFDName(name); err != nil {
			return l, err
		}
		l.Address = name
	default:
		return l, fmt.Errorf("want tcp://HOST:PORT, unix:///PATH or systemd:NAME")
	}
	return l, nil
}

// normaliseTCP checks HOST:PORT and returns it with the IP in canonical form.
func normaliseTCP(hostport string) (string, error) {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		if strings.Count(hostport, ":") > 1 && !strings.HasPrefix(hostport, "[") {
			return "", fmt.Errorf("%w (write an IPv6 address in brackets: [::1]:8000)", err)
		}
		return "", err
	}
	if host != "localhost" {
		ip, err := netip.ParseAddr(host)
		if err != nil {
			return "", fmt.Errorf("host %q is neither an IP address nor \"localhost\"", host)
		}
		host = ip.String()
	}
	n, err := parsePort(port)
	if err != nil {
		return "", err
	}
	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// parsePort accepts a decimal port 0..65535.
func parsePort(s string) (int, error) {
	if !isDigits(s) {
		return 0, fmt.Errorf("port %q is not a number", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q is out of range 0..65535", s)
	}
	return int(n), nil
}

// checkHostPort validates an address such as the supervisor's http key:
// any host (empty means every interface) and a decimal port.
func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	_, err = parsePort(port)
	return err
}

// checkFDName applies sd_listen_fds_with_names' rules: at most 255
// printable ASCII characters, no ':'.
func checkFDName(name string) error {
	if len(name) > 255 {
		return fmt.Errorf("systemd socket name is longer than 255 bytes")
	}
	for _, c := range []byte(name) {
		if c <= ' ' || c > '~' || c == ':' {
			return fmt.Errorf("systemd socket name %q may only hold printable ASCII other than ':' and space", name)
		}
	}
	return nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range []byte(s) {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// dupKey identifies a listener for duplicate detection; "" means it never
// conflicts (TCP port 0 picks a fresh port on every bind).
func (l Listener) dupKey() string {
	if l.Network == NetTCP && strings.HasSuffix(l.Address, ":0") {
		return ""
	}
	return l.Network.String() + ":" + l.Address
}
