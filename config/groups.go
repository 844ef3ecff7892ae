package config

import (
	"maps"
	"slices"
	"strings"
)

// Group is one [group.NAME] table: a name for a set of apps that control
// verbs accept as `group:NAME`.
type Group struct {
	Name string
	// Apps are the members, in the order written; each names an app.
	Apps []string
}

// Group returns the group named name, or nil.
func (c *Config) Group(name string) *Group {
	for i := range c.Groups {
		if c.Groups[i].Name == name {
			return &c.Groups[i]
		}
	}
	return nil
}

// lifecycle reads the keys that say whether and when an app runs:
// required, autostart, after and requires.
func lifecycle(t *table, a *App) {
	a.Required, a.Autostart = true, true
	t.boolean("required", &a.Required)
	t.boolean("autostart", &a.Autostart)
	t.strList("after", &a.After)
	t.strList("requires", &a.Requires)
}

// groups reads the [group.NAME] tables, sorted by name.
func (p *parser) groups(t *table) []Group {
	if t == nil {
		return nil
	}
	var out []Group
	for _, name := range slices.Sorted(maps.Keys(t.m)) {
		g := t.sub(name)
		if g == nil {
			continue
		}
		if !validAppName(name) {
			p.errf(g.path, "invalid group name %q: use only letters, digits, '_', '.' and '-'", name)
		}
		grp := Group{Name: name}
		if !g.strList("apps", &grp.Apps) && !g.has("apps") {
			g.errf("apps", "required: the names of the group's apps")
		}
		g.finish()
		out = append(out, grp)
	}
	return out
}

// orderChecks checks that groups, after and requires name apps of the
// file, and that the start order has no cycle.
func (p *parser) orderChecks(cfg *Config) {
	for _, g := range cfg.Groups {
		for i, n := range g.Apps {
			if cfg.App(n) == nil {
				p.elemErrf([]string{"group", g.Name, "apps"}, i, "no app named %q", n)
			}
		}
	}
	for _, a := range cfg.Apps {
		for _, key := range []string{"after", "requires"} {
			list := a.After
			if key == "requires" {
				list = a.Requires
			}
			for i, n := range list {
				switch {
				case n == a.Name:
					p.elemErrf(append(a.key(), key), i, "an app cannot wait for itself")
				case cfg.App(n) == nil:
					p.elemErrf(append(a.key(), key), i, "no app named %q", n)
				}
			}
		}
	}
	if cycle := findCycle(cfg); cycle != nil {
		first := cfg.App(cycle[0])
		p.errf(append(first.key(), "after"), "start order has a cycle: %s", strings.Join(cycle, " -> "))
	}
}

// Deps returns the names of the apps a must start after: After and Requires
// together, without duplicates, in the order written.
func (a *App) Deps() []string {
	var out []string
	for _, n := range append(slices.Clone(a.After), a.Requires...) {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// findCycle returns the apps of one cycle of the after/requires relation
// (the first repeated at the end), or nil when there is none.
func findCycle(cfg *Config) []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := map[string]int{}
	var path []string
	var visit func(name string) []string
	visit = func(name string) []string {
		switch mark[name] {
		case onPath:
			i := slices.Index(path, name)
			return append(slices.Clone(path[i:]), name)
		case done:
			return nil
		}
		a := cfg.App(name)
		if a == nil {
			return nil
		}
		mark[name] = onPath
		path = append(path, name)
		for _, d := range a.Deps() {
			if c := visit(d); c != nil {
				return c
			}
		}
		path = path[:len(path)-1]
		mark[name] = done
		return nil
	}
	for _, a := range cfg.Apps {
		if c := visit(a.Name); c != nil {
			return c
		}
	}
	return nil
}

// key is the app's table key (app.NAME), for errors that name one of its keys.
func (a *App) key() []string { return []string{"app", a.Name} }
