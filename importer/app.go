package importer

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// app builds the [app.NAME] table of the program; g is its Gunicorn
// command line, nil for a process.
func (p *progConv) app(g *gunicornCmd) *appOut {
	name := p.name
	if p.copyOf > 0 {
		name = p.processName()
	}
	a := &appOut{name: p.uniqueName(p.appName(name)), priority: 999}
	p.t = &table{header: "app." + quoteKey(a.name)}
	p.t.intro = []string{fmt.Sprintf("[%s] from %s:%d", p.s.name, p.s.file, p.s.line)}
	p.gunicornApp = g != nil
	if g != nil {
		p.gunicorn(g)
	} else {
		p.process()
	}
	p.directory()
	p.identity()
	p.environment()
	p.restart()
	p.start()
	p.stop()
	p.logs()
	if v, line, ok := p.get("priority"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
			a.priority = n
		} else {
			p.warnAt(line, "priority", fmt.Sprintf("%q is not an integer: ignored", v))
		}
	}
	p.instancesAndNames()
	p.unmapped()
	a.t = p.t
	return a
}

// quoteKey returns an app name as a TOML key.
func quoteKey(name string) string { return bareOrQuoted(name) }

// processName expands process_name (default %(program_name)s) for a copy.
func (p *progConv) processName() string {
	if v, _, ok := p.get("process_name"); ok {
		return v
	}
	return p.name + "_" + p.ex.vars["process_num"]
}

// gunicorn writes a Gunicorn app's keys.
func (p *progConv) gunicorn(g *gunicornCmd) {
	line := p.line("command")
	p.t.set("kind", quote("gunicorn"), "command: "+strings.Join(p.argv, " "))
	if g.venv != "" {
		p.t.set("virtualenv", quote(g.venv))
	} else {
		p.t.set("command", quoteList([]string{g.exe}), "the gunicorn executable (no virtualenv in the command's path)")
	}
	for _, w := range g.warnings {
		p.warnAt(line, "command", w)
	}
	if g.wsgi == "" {
		p.warnAt(line, "command", "no WSGI target (APP_MODULE) on the command line: set wsgi")
		p.t.set("wsgi", quote(""), "TODO: Gunicorn's APP_MODULE (not on the command line)")
	} else {
		p.t.set("wsgi", quote(g.wsgi))
	}
	if g.workers > 0 {
		p.t.set("workers", strconv.Itoa(g.workers))
	}
	if len(g.listen) == 0 {
		p.t.set("listen", quoteList([]string{"tcp://127.0.0.1:8000"}),
			"no --bind on the command line: Gunicorn's default (check a -c file for bind)")
		p.warnAt(line, "command", "no -b/--bind: listen set to Gunicorn's default tcp://127.0.0.1:8000")
	} else {
		p.t.set("listen", quoteList(g.listen), "--bind: sockets the supervisor binds and holds across reloads")
	}
	if len(g.args) > 0 {
		var note []string
		if slices.ContainsFunc(g.args, func(a string) bool { return a == "-c" || strings.HasPrefix(a, "--config") }) {
			note = append(note, "the -c file stays: the supervisor's sockets replace its bind, and it must not set daemon")
		}
		p.t.set("args", quoteList(g.args), note...)
	}
	var notes []string
	notes = append(notes, g.notes...)
	notes = append(notes, g.warnings...)
	if len(notes) > 0 {
		p.t.comment(notes...)
	}
}

// process writes a process app's keys.
func (p *progConv) process() {
	p.t.set("kind", quote("process"))
	if len(p.argv) > 0 {
		p.t.set("command", quoteList(p.argv))
	}
}

// line returns the line of key in the section (the header's when absent).
func (p *progConv) line(key string) int {
	if o, ok := p.s.get(key); ok {
		return o.line
	}
	return p.s.line
}

// directory writes directory; a relative one is refused, as the two
// programs would resolve it from different places.
func (p *progConv) directory() {
	v, line, ok := p.get("directory")
	switch {
	case !ok:
	case !filepath.IsAbs(v):
		p.warnAt(line, "directory", fmt.Sprintf("%s: relative (to supervisord's working directory): not mapped, set an absolute directory", v))
		p.t.comment("directory = " + v + ": not mapped (relative)")
	default:
		p.t.set("directory", quote(v))
	}
}

// identity writes user (the program's, else [supervisord] user) and
// umask; a program that ran as root gets allow_root.
func (p *progConv) identity() {
	v, _, ok := p.get("user")
	switch {
	case ok && v != "root" && v != "0":
		p.t.set("user", quote(v))
	case !ok && p.c.globalUser != "" && p.c.globalUser != "root" && p.c.globalUser != "0":
		p.t.set("user", quote(p.c.globalUser), "[supervisord] user: supervisord ran every program as that user")
	default:
		p.t.set("allow_root", "true", "supervisord ran it as root: consider setting user")
	}
	if v, line, ok := p.get("umask"); ok {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
		if err != nil || n > 0o777 {
			p.warnAt(line, "umask", fmt.Sprintf("%q is not an octal umask: not mapped", v))
			p.t.comment("umask = " + v + " (not an octal umask)")
		} else {
			p.t.set("umask", quote(fmt.Sprintf("%04o", n)))
		}
	}
}

// environment writes env from environment= and [supervisord] environment=;
// a variable set to its own %(ENV_X)s goes to [supervisor] pass_env.
func (p *progConv) environment() {
	env := map[string]string{}
	pairs := slices.Clone(p.c.globalEnv)
	if o, ok := p.s.get("environment"); ok {
		p.used["environment"] = true
		own, err := splitEnvironment(o.value)
		if err != nil {
			p.warnAt(o.line, "environment", fmt.Sprintf("%v: not mapped", err))
			p.t.comment("environment = " + o.value)
		}
		pairs = append(pairs, own...)
	}
	line := p.line("environment")
	for _, kv := range pairs {
		if kv[1] == "%(ENV_"+kv[0]+")s" {
			p.c.addPassEnv(kv[0])
			delete(env, kv[0])
			continue
		}
		v, unknown := p.ex.expand(kv[1])
		for _, u := range unknown {
			p.warnAt(line, "environment", fmt.Sprintf("%s: %%(%s)s kept as written", kv[0], u))
		}
		for e := range p.ex.used {
			p.warnAt(line, "environment", fmt.Sprintf("%s: %%(ENV_%s)s expanded now, from this shell's environment", kv[0], e))
		}
		clear(p.ex.used)
		env[kv[0]] = v
	}
	if len(env) > 0 {
		p.t.set("env", quoteMap(env))
	}
}

// addPassEnv adds name to [supervisor] pass_env once.
func (c *converter) addPassEnv(name string) {
	if !slices.Contains(c.passEnv, name) {
		c.passEnv = append(c.passEnv, name)
	}
}
