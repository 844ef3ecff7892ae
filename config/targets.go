package config

import (
	"errors"
	"fmt"
	"strings"
)

// ErrNoSuchApp is returned for a target or app name the configuration does
// not have.
var ErrNoSuchApp = errors.New("no such app")

// Resolve expands control targets (supctl's arguments) into app names, in file order, without
// duplicates: an app name, the name of an app with instances (every
// instance), `all` (every app) or `group:NAME` (the group's apps). An unknown target is an error
// wrapping ErrNoSuchApp.
func (cfg *Config) Resolve(targets []string) ([]string, error) {
	want := map[string]bool{}
	for _, t := range targets {
		switch {
		case t == "all":
			for _, a := range cfg.Apps {
				want[a.Name] = true
			}
		case strings.HasPrefix(t, "group:"):
			name := strings.TrimPrefix(t, "group:")
			g := cfg.Group(name)
			if g == nil {
				return nil, fmt.Errorf("%w: no group %q", ErrNoSuchApp, name)
			}
			for _, n := range g.Apps {
				want[n] = true
			}
		case cfg.App(t) != nil:
			want[t] = true
		default:
			found := false
			for _, a := range cfg.Apps {
				if a.InstanceOf == t {
					want[a.Name], found = true, true
				}
			}
			if !found {
				return nil, fmt.Errorf("%w: %q", ErrNoSuchApp, t)
			}
		}
	}
	var out []string
	for _, a := range cfg.Apps {
		if want[a.Name] {
			out = append(out, a.Name)
		}
	}
	return out, nil
}
