package importer

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/gunisup/supervisor/config"
)

// convert turns the loaded sections into apps and groups.
func (c *converter) convert() error {
	var groups []*section
	for _, s := range c.sections {
		kind, name, _ := strings.Cut(s.name, ":")
		switch {
		case s.name == "supervisord":
			c.supervisord(s)
		case kind == "group" && name != "":
			groups = append(groups, s)
			if o, ok := s.get("programs"); ok {
				for _, prog := range strings.Split(o.value, ",") {
					c.groupOf[strings.TrimSpace(prog)] = name
				}
			}
		}
	}
	for _, s := range c.sections {
		kind, name, _ := strings.Cut(s.name, ":")
		switch {
		case kind == "program" && name != "":
			if _, dup := c.byProgram[name]; dup {
				return fmt.Errorf("%s:%d: [%s] defined twice", s.file, s.line, s.name)
			}
			c.program(s, name)
		case kind != "group" && s.name != "supervisord":
			c.otherSection(s)
		}
	}
	for _, s := range groups {
		c.group(s, strings.TrimPrefix(s.name, "group:"))
	}
	c.order()
	return nil
}

// vars returns the %(NAME)s values of copy num of program name.
func (c *converter) vars(name string, n int, num string) map[string]string {
	group := name
	if g, ok := c.groupOf[name]; ok {
		group = g
	}
	return map[string]string{"program_name": name, "group_name": group, "numprocs": strconv.Itoa(n), "process_num": num}
}

// program converts one [program:NAME].
func (c *converter) program(s *section, name string) {
	p := &progConv{c: c, s: s, name: name, used: map[string]bool{}, ex: c.expansion(s, nil)}
	n := p.intOpt("numprocs", 1, 1)
	if n > config.MaxInstances {
		p.warnAt(p.line("numprocs"), "numprocs", fmt.Sprintf("%d: at most %d instances; %d kept", n, config.MaxInstances, config.MaxInstances))
		n = config.MaxInstances
	}
	first := p.intOpt("numprocs_start", 0, 0)
	p.ex = c.expansion(s, c.vars(name, n, strconv.Itoa(first)))
	argv := p.command()
	g, isGunicorn := parseGunicorn(argv)
	switch {
	case isGunicorn && n > 1:
		// Each copy of a Gunicorn program is an app of its own (its own
		// sockets); instances are for processes.
		for k := range n {
			q := &progConv{c: c, s: s, name: name, used: map[string]bool{}, ex: c.expansion(s, c.vars(name, n, strconv.Itoa(first+k)))}
			q.copyOf = n
			q.used["numprocs"], q.used["numprocs_start"] = true, true
			g, _ := parseGunicorn(q.command())
			c.addApp(q.app(&g), name)
		}
	case n > 1:
		p.instances = n
		p.ex = c.expansion(s, c.vars(name, n, instanceMark))
		p.command()
		c.addApp(p.app(nil), name)
	case isGunicorn:
		c.addApp(p.app(&g), name)
	default:
		c.addApp(p.app(nil), name)
	}
}

// addApp records a converted app under its program.
func (c *converter) addApp(a *appOut, prog string) {
	c.apps = append(c.apps, a)
	c.byProgram[prog] = append(c.byProgram[prog], a.name)
}

// progConv converts one program (or one copy of a Gunicorn program).
type progConv struct {
	c    *converter
	s    *section
	name string
	ex   *expansion
	argv []string
	// instances is N for a process with numprocs = N > 1; copyOf is N for
	// a copy of a Gunicorn program with numprocs = N > 1.
	instances, copyOf int
	// gunicornApp is true when the program becomes a Gunicorn app.
	gunicornApp bool
	used        map[string]bool
	t           *table
}

// get returns key's expanded value, marking it converted.
func (p *progConv) get(key string) (string, int, bool) {
	o, ok := p.s.get(key)
	if !ok {
		return "", 0, false
	}
	p.used[key] = true
	v, unknown := p.ex.expand(o.value)
	for _, u := range unknown {
		p.warnAt(o.line, key, fmt.Sprintf("%%(%s)s is not a supervisord expansion here: kept as written", u))
	}
	if len(p.ex.used) > 0 {
		for _, e := range slices.Sorted(maps.Keys(p.ex.used)) {
			p.warnAt(o.line, key, fmt.Sprintf("%%(ENV_%s)s expanded now, from this shell's environment (supervisord read its own at start)", e))
		}
		clear(p.ex.used)
	}
	return v, o.line, true
}

// warnAt records a warning about key (at line) of this program.
func (p *progConv) warnAt(line int, key, msg string) {
	p.c.warn(p.s.file, line, fmt.Sprintf("[%s] %s: %s", p.s.name, key, msg))
}

// intOpt reads an integer key of at least min, def when absent or bad.
func (p *progConv) intOpt(key string, def, min int) int {
	v, line, ok := p.get(key)
	if !ok {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < min {
		p.warnAt(line, key, fmt.Sprintf("%q is not an integer of at least %d: %d assumed", v, min, def))
		return def
	}
	return n
}

// command reads and splits the command line.
func (p *progConv) command() []string {
	v, line, ok := p.get("command")
	if !ok {
		p.warnAt(p.s.line, "command", "missing (supervisord requires it)")
		p.argv = nil
		return nil
	}
	argv, err := splitCommand(v)
	if err != nil {
		p.warnAt(line, "command", fmt.Sprintf("%v: kept as one word", err))
		argv = []string{v}
	}
	p.argv = argv
	return argv
}

// boolOpt parses a supervisord boolean.
func boolOpt(v string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true", "yes", "on", "1":
		return true, true
	case "false", "no", "off", "0":
		return false, true
	}
	return false, false
}

// validName matches the supervisor's app names.
var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// invalidNameChars are the characters an app name may not hold.
var invalidNameChars = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// appName returns name as a valid app name, with a warning when it changed.
func (p *progConv) appName(name string) string {
	if validName.MatchString(name) {
		return name
	}
	fixed := invalidNameChars.ReplaceAllString(name, "-")
	if fixed == "" {
		fixed = "program"
	}
	p.warnAt(p.s.line, "name", fmt.Sprintf("%q renamed %q (app names take letters, digits, '_', '.' and '-')", name, fixed))
	return fixed
}

// uniqueName returns name, or name-2, name-3... when an app already has
// it (two process_name that expand alike), with a warning.
func (p *progConv) uniqueName(name string) string {
	fixed := name
	for i := 2; p.c.appNames[fixed]; i++ {
		fixed = fmt.Sprintf("%s-%d", name, i)
	}
	if fixed != name {
		p.warnAt(p.s.line, "name", fmt.Sprintf("%q is already an app: renamed %q", name, fixed))
	}
	p.c.appNames[fixed] = true
	return fixed
}
