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
	byName := appsByName(cfg.Apps)
	for _, g := range cfg.Groups {
		for i, n := range g.Apps {
			if byName[n] == nil {
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
				case byName[n] == nil:
					p.elemErrf(append(a.key(), key), i, "no app named %q", n)
				}
			}
		}
	}
	if cycle := findCycle(cfg.Apps, byName); cycle != nil {
		first := byName[cycle[0]]
		p.errf(append(first.key(), "after"), "start order has a cycle: %s", strings.Join(cycle, " -> "))
	}
}

// appsByName indexes apps by name.
func appsByName(apps []*App) map[string]*App {
	m := make(map[string]*App, len(apps))
	for _, a := range apps {
		m[a.Name] = a
	}
	return m
}

// findCycle returns the apps of one cycle of the after/requires relation
// (the first repeated at the end), or nil when there is none. Names missing
// from byName are skipped. It walks depth first without recursion, in time
// linear in the apps and their dependencies, so that a chain of 100,000
// apps needs neither a deep stack nor a scan of apps per name.
func findCycle(apps []*App, byName map[string]*App) []string {
	const (
		unseen = iota
		onPath
		done
	)
	mark := make(map[string]int, len(apps))
	var path []depFrame
	for _, root := range apps {
		if mark[root.Name] != unseen {
			continue
		}
		mark[root.Name] = onPath
		path = append(path[:0], depFrame{name: root.Name, deps: root.Deps()})
		for len(path) > 0 {
			top := &path[len(path)-1]
			if top.next == len(top.deps) {
				mark[top.name] = done
				path = path[:len(path)-1]
				continue
			}
			d := top.deps[top.next]
			top.next++
			a := byName[d]
			switch {
			case mark[d] == onPath:
				return cycleFrom(path, d)
			case mark[d] == done || a == nil:
				continue
			}
			mark[d] = onPath
			path = append(path, depFrame{name: d, deps: a.Deps()})
		}
	}
	return nil
}

// depFrame is one app on findCycle's path: its dependencies, and the index
// of the next one to visit.
type depFrame struct {
	name string
	deps []string
	next int
}

// cycleFrom returns the names of path from the frame of name on, then name
// again: the cycle that reaching name once more closes.
func cycleFrom(path []depFrame, name string) []string {
	i := slices.IndexFunc(path, func(f depFrame) bool { return f.name == name })
	out := make([]string, 0, len(path)-i+1)
	for _, f := range path[i:] {
		out = append(out, f.name)
	}
	return append(out, name)
}

// key is the app's table key (app.NAME), for errors that name one of its keys.
func (a *App) key() []string { return []string{"app", a.Name} }
