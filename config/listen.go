package config

import (
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
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
		if held := heldPath(p); len(held) > maxUnixPath {
			return l, fmt.Errorf("unix socket path is %d bytes long, the limit is %d: the supervisor binds the socket at the hidden name .NAME.held beside it, which must fit in %d bytes",
				len(p), maxUnixPath-(len(held)-len(p)), maxUnixPath)
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

// HeldPath is the hidden name, beside a Unix listener's path, at which the
// supervisor binds the socket ("/run/web.sock" is bound at
// "/run/.web.sock.held"; the configured path is a hard link to it).
func (l Listener) HeldPath() string { return heldPath(l.Address) }

func heldPath(public string) string {
	return filepath.Join(filepath.Dir(public), "."+filepath.Base(public)+".held")
}

// TCPAddr returns the address a TCP listener binds: "localhost" is
// 127.0.0.1 and an IPv4-mapped IPv6 address is IPv4. Listeners with equal
// TCPAddr are one socket.
func (l Listener) TCPAddr() (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(l.Address)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen %s: host %q is not an IP address: %w", l.Raw, host, err)
	}
	n, err := parsePort(port)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("listen %s: %w", l.Raw, err)
	}
	return netip.AddrPortFrom(ip.Unmap(), uint16(n)), nil
}

// Wrap returns an *Error that names where l is written (its File, Line
// and Key) and wraps err, for a failure to open l that the configuration
// caused.
func (l Listener) Wrap(err error) error {
	e := l.errorf("%v", err)
	e.Err = err
	return e
}

// errorf is a problem with l found while parsing, at l's position.
func (l Listener) errorf(format string, args ...any) *Error {
	return &Error{File: l.File, Line: l.Line, Key: l.Key, Msg: fmt.Sprintf(format, args...)}
}

// checkUnixPlace checks what binding a Unix listener needs of the
// filesystem: its directory exists, and its path, where it exists, is a
// socket (a stale one is replaced at bind).
func checkUnixPlace(l Listener, cached func(kind string, check func(string) error, path string) error) error {
	if err := cached("dir", checkDir, filepath.Dir(l.Address)); err != nil {
		return fmt.Errorf("directory of the socket: %w", err)
	}
	for _, p := range []string{l.Address, l.HeldPath()} {
		fi, err := os.Lstat(p)
		if err == nil && fi.Mode().Type() != fs.ModeSocket {
			return fmt.Errorf("%s exists and is not a socket", p)
		}
	}
	return nil
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

// claims finds listeners that cannot all be bound: one socket written twice
// (127.0.0.1:P and localhost:P; /run/a/../web.sock, /var/run/web.sock through
// a /var/run link and /run/web.sock), or a
// wildcard address and a specific one of the same family and port
// (0.0.0.0:P and 127.0.0.1:P: Linux refuses the second bind).
type claims struct {
	exact map[string]Listener
	// port holds the first TCP listener of each family and port.
	port map[string]Listener
	// wild holds the wildcard TCP listener of each family and port.
	wild map[string]Listener
	// dirs maps a socket directory to its resolved path ("": unresolvable).
	dirs map[string]string
}

func newClaims() *claims {
	return &claims{exact: map[string]Listener{}, port: map[string]Listener{}, wild: map[string]Listener{}, dirs: map[string]string{}}
}

// realDir returns dir with symlinks resolved, once per dir (apps' sockets
// share directories); false when it does not resolve.
func (c *claims) realDir(dir string) (string, bool) {
	if real, ok := c.dirs[dir]; ok {
		return real, real != ""
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		real = ""
	}
	c.dirs[dir] = real
	return real, real != ""
}

// claim records l and returns the listener it conflicts with, and whether
// it is the same socket (rather than an overlapping wildcard).
func (c *claims) claim(l Listener) (prev Listener, same, conflict bool) {
	key := l.Network.String() + ":" + l.Address
	var ap netip.AddrPort
	if l.Network == NetUnix {
		// /var/run/web.sock and /run/web.sock are one file where /var/run
		// links to /run; an unresolvable directory is reported elsewhere.
		if dir, ok := c.realDir(filepath.Dir(l.Address)); ok {
			key = "unix:" + filepath.Join(dir, filepath.Base(l.Address))
		}
	}
	if l.Network == NetTCP {
		var err error
		if ap, err = l.TCPAddr(); err != nil || ap.Port() == 0 {
			return Listener{}, false, false // port 0 picks a fresh port on every bind
		}
		key = "tcp:" + ap.String()
	}
	if p, ok := c.exact[key]; ok {
		return p, true, true
	}
	c.exact[key] = l
	if l.Network != NetTCP {
		return Listener{}, false, false
	}
	family := "4"
	if ap.Addr().Is6() {
		family = "6"
	}
	fp := family + ":" + strconv.Itoa(int(ap.Port()))
	if w, ok := c.wild[fp]; ok {
		return w, false, true
	}
	first, seen := c.port[fp]
	if !seen {
		c.port[fp] = l
	}
	if ap.Addr().IsUnspecified() {
		c.wild[fp] = l
		if seen {
			return first, false, true
		}
	}
	return Listener{}, false, false
}
