package e2e

import (
	"fmt"
	"strconv"
	"strings"
)

// Config builds the TOML text of Options.Config: a [supervisor] table on the
// harness's control socket (@SOCK@) and run_dir (@DIR@/run), then one table
// per app. Its zero value is a supervisor without apps or HTTP endpoint.
type Config struct {
	// HTTP is [supervisor] http ("" disables the endpoint; "127.0.0.1:0"
	// picks a port).
	HTTP string
	// ShutdownTimeout is [supervisor] shutdown_timeout; "" leaves the
	// product default.
	ShutdownTimeout string
	// Extra is more lines of the [supervisor] table, verbatim.
	Extra string
	Apps  []App
}

// App is one [app.NAME] table of Config. The zero value (apart from Name)
// is a Gunicorn app of two workers on 127.0.0.1:0 from the shared
// virtualenv (@VENV@), serving app:app from @DIR@/app, allowed to run as
// root, with stop_timeout 10s.
type App struct {
	// Name is the app's name; "" is "web".
	Name string
	// Command, when set, makes a process app (kind = "process") running
	// this argv; the Gunicorn keys (virtualenv, wsgi, workers, listen) are
	// then not written.
	Command []string
	// Virtualenv is the Gunicorn app's virtualenv; "" is @VENV@.
	Virtualenv string
	// Directory is the working directory; "" is @DIR@/app for a Gunicorn
	// app and unset for a process app.
	Directory string
	// Workers is Gunicorn's worker count; 0 is 2.
	Workers int
	// WorkersRange, when set, is written as workers = "MIN..MAX" instead
	// of Workers.
	WorkersRange string
	// Listen is the listen list of a Gunicorn app; nil is
	// ["tcp://127.0.0.1:0"].
	Listen []string
	// StopTimeout is stop_timeout; "" is "10s".
	StopTimeout string
	// Extra is appended to the app table verbatim: more keys, then any
	// sub-table ([app.NAME.reload], [app.NAME.health]).
	Extra string
}

// String returns the configuration's TOML text, with the placeholders
// Options.Config expands.
func (c Config) String() string {
	var b strings.Builder
	b.WriteString("[supervisor]\ncontrol_socket = \"@SOCK@\"\n")
	fmt.Fprintf(&b, "http = %q\nrun_dir = \"@DIR@/run\"\n", c.HTTP)
	if c.ShutdownTimeout != "" {
		fmt.Fprintf(&b, "shutdown_timeout = %q\n", c.ShutdownTimeout)
	}
	b.WriteString(c.Extra)
	for _, a := range c.Apps {
		b.WriteString("\n")
		b.WriteString(a.String())
	}
	return b.String()
}

// String returns the app's [app.NAME] table (and whatever Extra adds).
func (a App) String() string {
	name := a.Name
	if name == "" {
		name = "web"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "[app.%s]\nallow_root = true\n", name)
	dir := a.Directory
	if a.Command != nil {
		fmt.Fprintf(&b, "kind = \"process\"\ncommand = %s\n", tomlStrings(a.Command))
	} else {
		venv, workers, listen := a.Virtualenv, a.Workers, a.Listen
		if venv == "" {
			venv = "@VENV@"
		}
		if workers == 0 {
			workers = 2
		}
		if listen == nil {
			listen = []string{"tcp://127.0.0.1:0"}
		}
		if dir == "" {
			dir = "@DIR@/app"
		}
		w := strconv.Itoa(workers)
		if a.WorkersRange != "" {
			w = strconv.Quote(a.WorkersRange)
		}
		fmt.Fprintf(&b, "virtualenv = %q\nwsgi = \"app:app\"\nworkers = %s\nlisten = %s\n", venv, w, tomlStrings(listen))
	}
	if dir != "" {
		fmt.Fprintf(&b, "directory = %q\n", dir)
	}
	stop := a.StopTimeout
	if stop == "" {
		stop = "10s"
	}
	fmt.Fprintf(&b, "stop_timeout = %q\n", stop)
	b.WriteString(a.Extra)
	return b.String()
}

// tomlStrings formats ss as a TOML array of basic strings.
func tomlStrings(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// WebGatedSwap are the reload and health tables of an app named web whose
// reloads swap generations gated by healthy_after = 3 passes of /healthz:
// the gate of the steering tests.
const WebGatedSwap = `
[app.web.reload]
strategy = "swap"
timeout = "60s"

[app.web.health]
path = "/healthz"
healthy_after = 3
interval = "1s"
`
