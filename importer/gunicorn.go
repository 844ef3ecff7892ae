package importer

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// gunicornCmd is a Gunicorn command line taken apart.
type gunicornCmd struct {
	// venv is the virtualenv the executable lives in ("" for none);
	// exe is the executable when there is no virtualenv.
	venv, exe string
	wsgi      string
	workers   int
	listen    []string
	args      []string
	// notes are comments for the TOML; warnings go to stderr too.
	notes, warnings []string
}

// pythonName matches an interpreter's name: python, python3, python3.11.
var pythonName = regexp.MustCompile(`^python[0-9.]*$`)

// gunicornFlags are Gunicorn's options that take no value (all others do).
var gunicornFlags = map[string]bool{
	"-D": true, "--daemon": true, "-R": true, "--enable-stdio-inheritance": true,
	"--reload": true, "--preload": true, "--no-sendfile": true, "--reuse-port": true,
	"--spew": true, "--check-config": true, "--print-config": true, "--capture-output": true,
	"--log-syslog": true, "--disable-redirect-access-to-syslog": true, "--initgroups": true,
	"--suppress-ragged-eofs": true, "--do-handshake-on-connect": true, "--strip-header-spaces": true,
	"-v": true, "--version": true, "--debug": true, "--no-control-socket": true,
}

// parseGunicorn recognises argv as Gunicorn's (bin/gunicorn, or python -m
// gunicorn) and takes it apart; ok is false for any other command.
func parseGunicorn(argv []string) (g gunicornCmd, ok bool) {
	if len(argv) == 0 {
		return g, false
	}
	base := filepath.Base(argv[0])
	rest := argv[1:]
	switch {
	case base == "gunicorn":
	case pythonName.MatchString(base) && len(argv) >= 3 && argv[1] == "-m" && argv[2] == "gunicorn":
		rest = argv[3:]
	default:
		return g, false
	}
	if dir := filepath.Dir(argv[0]); filepath.IsAbs(argv[0]) && filepath.Base(dir) == "bin" && filepath.Dir(dir) != "/usr" && filepath.Dir(dir) != "/" {
		g.venv = filepath.Dir(dir)
		if base != "gunicorn" {
			g.notes = append(g.notes, fmt.Sprintf("%s -m gunicorn: the supervisor starts %s/bin/gunicorn", argv[0], g.venv))
		}
	} else if base == "gunicorn" {
		g.exe = argv[0]
	} else {
		g.exe = "gunicorn"
		g.warnings = append(g.warnings, fmt.Sprintf("%s -m gunicorn outside a virtualenv: command = [\"gunicorn\"] is looked up on PATH", argv[0]))
	}
	g.takeArgs(rest)
	return g, true
}

// takeArgs sorts Gunicorn's arguments into listen, workers, the WSGI
// target and the arguments kept.
func (g *gunicornCmd) takeArgs(rest []string) {
	for i := 0; i < len(rest); i++ {
		arg := rest[i]
		name, val, hasVal := arg, "", false
		switch {
		case strings.HasPrefix(arg, "--"):
			name, val, hasVal = strings.Cut(arg, "=")
		case len(arg) > 2 && arg[0] == '-' && !gunicornFlags[arg[:2]]:
			name, val, hasVal = arg[:2], arg[2:], true
		case arg == "-" || !strings.HasPrefix(arg, "-"):
			if g.wsgi != "" {
				g.warnings = append(g.warnings, fmt.Sprintf("second positional argument %q kept in args", arg))
				g.args = append(g.args, arg)
			}
			if g.wsgi == "" {
				g.wsgi = arg
			}
			continue
		}
		tokens := []string{arg}
		if !hasVal && !gunicornFlags[name] && i+1 < len(rest) {
			val = rest[i+1]
			tokens = append(tokens, val)
			i++
		}
		if !g.option(name, val) {
			g.args = append(g.args, tokens...)
		}
	}
}

// option takes in one option the supervisor maps or drops, and reports
// whether it did (false: the option stays in args as written).
func (g *gunicornCmd) option(name, val string) bool {
	switch name {
	case "-b", "--bind":
		if l, err := listenAddr(val); err != nil {
			g.warnings = append(g.warnings, fmt.Sprintf("%s %s dropped: %v; set listen by hand", name, val, err))
		} else {
			g.listen = append(g.listen, l)
		}
	case "-w", "--workers":
		n, err := strconv.Atoi(val)
		if err != nil || n < 0 || n > 1024 {
			g.warnings = append(g.warnings, fmt.Sprintf("%s %s: not a worker count from 0 to 1024; kept in args", name, val))
			return false
		}
		g.workers = n
	case "-D", "--daemon":
		g.warnings = append(g.warnings, name+" dropped: gunicorn must stay a child of the supervisor")
	case "-p", "--pid":
		g.warnings = append(g.warnings, name+" "+val+" dropped: the supervisor manages gunicorn's pidfile")
	case "--reuse-port":
		g.notes = append(g.notes, "--reuse-port dropped: the supervisor binds and holds the sockets")
	default:
		return false
	}
	return true
}

// listenAddr turns a Gunicorn bind address into a listen address.
func listenAddr(bind string) (string, error) {
	switch {
	case strings.HasPrefix(bind, "unix:"):
		p := strings.TrimPrefix(bind, "unix:")
		if !filepath.IsAbs(p) {
			return "", fmt.Errorf("a relative socket path")
		}
		return "unix://" + p, nil
	case strings.HasPrefix(bind, "fd://"):
		return "", fmt.Errorf("an inherited descriptor")
	case bind == "":
		return "", fmt.Errorf("empty")
	}
	host, port := bind, "8000"
	if i := strings.LastIndexByte(bind, ':'); i >= 0 && !strings.HasSuffix(bind, "]") {
		host, port = bind[:i], bind[i+1:]
	}
	if host == "" {
		host = "0.0.0.0"
	}
	return "tcp://" + host + ":" + port, nil
}
