package importer

import (
	"fmt"
	"slices"
	"strings"
)

// supervisord reads [supervisord]: its environment goes to every app; the
// rest concerns supervisord itself.
func (c *converter) supervisord(s *section) {
	for _, o := range s.keys {
		if o.key == "user" {
			c.globalUser = strings.TrimSpace(o.value)
			continue
		}
		if o.key != "environment" {
			c.warn(s.file, o.line, fmt.Sprintf("[supervisord] %s: not mapped (supervisord's own setting)", o.key))
			c.notes = append(c.notes, fmt.Sprintf("[supervisord] %s = %s: not mapped", o.key, o.value))
			continue
		}
		pairs, err := splitEnvironment(o.value)
		if err != nil {
			c.warn(s.file, o.line, fmt.Sprintf("[supervisord] environment: %v: not mapped", err))
			continue
		}
		c.globalEnv = pairs
	}
}

// group converts [group:NAME] into [group.NAME].
func (c *converter) group(s *section, name string) {
	t := &table{header: "group." + bareOrQuoted(name), intro: []string{fmt.Sprintf("[%s] from %s:%d: supctl verbs take group:%s", s.name, s.file, s.line, name)}}
	var apps []string
	for _, o := range s.keys {
		switch o.key {
		case "programs":
			for _, prog := range strings.Split(o.value, ",") {
				prog = strings.TrimSpace(prog)
				names, ok := c.byProgram[prog]
				if !ok {
					c.warn(s.file, o.line, fmt.Sprintf("[%s] programs: %q is no [program:%s]: left out", s.name, prog, prog))
				}
				apps = append(apps, names...)
			}
		default:
			c.warn(s.file, o.line, fmt.Sprintf("[%s] %s: not mapped", s.name, o.key))
			t.comment(fmt.Sprintf("not mapped: %s = %s", o.key, o.value))
		}
	}
	t.set("apps", quoteList(apps))
	c.groups = append(c.groups, t)
}

// otherSection warns about a section that has no counterpart.
func (c *converter) otherSection(s *section) {
	why := "not mapped"
	switch kind, _, _ := strings.Cut(s.name, ":"); kind {
	case "unix_http_server", "inet_http_server", "supervisorctl", "rpcinterface":
		why = "not mapped: supctl talks to [supervisor] control_socket; /metrics and /healthz are on [supervisor] http"
	case "eventlistener":
		why = "not mapped: no event listeners (the supervisor exports state on /metrics)"
	case "fcgi-program":
		why = "not mapped: no FastCGI programs"
	}
	c.warn(s.file, s.line, fmt.Sprintf("[%s]: %s", s.name, why))
	c.notes = append(c.notes, fmt.Sprintf("[%s] (%s:%d): %s", s.name, s.file, s.line, why))
}

// order turns priority into after: each app starts after the apps of the
// next lower priority, and the apps are written lowest priority first.
func (c *converter) order() {
	slices.SortStableFunc(c.apps, func(a, b *appOut) int { return a.priority - b.priority })
	var prev, cur []string
	for i, a := range c.apps {
		if i > 0 && a.priority != c.apps[i-1].priority {
			prev, cur = cur, nil
		}
		cur = append(cur, a.name)
		if len(prev) > 0 {
			a.t.set("after", quoteList(prev), fmt.Sprintf("priority=%d: started after the apps of the next lower priority, stopped before them", a.priority))
		}
	}
}

// render writes the whole TOML.
func (c *converter) render(files []string) string {
	var b strings.Builder
	writeComment(&b, "Converted by `supervisor import "+strings.Join(files, " ")+"`.")
	writeComment(&b, "Read every comment, then run `supervisor check -c FILE`; see gunisup.toml(5).")
	for _, n := range c.notes {
		writeComment(&b, n)
	}
	b.WriteString("\n[supervisor]\n")
	if len(c.passEnv) > 0 {
		writeComment(&b, "variables set to %(ENV_X)s: the supervisor passes its own")
		fmt.Fprintf(&b, "pass_env = %s\n", quoteList(c.passEnv))
	}
	for _, a := range c.apps {
		a.t.write(&b)
	}
	for _, g := range c.groups {
		g.write(&b)
	}
	return b.String()
}
