package config

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestLifecycleKeys(t *testing.T) {
	dir := fixture(t)
	p := writeConfig(t, dir, `
[app.migrate]
allow_root = true
kind = "process"
command = ["tool"]
restart = "never"
required = false

[app.worker]
allow_root = true
kind = "process"
command = ["tool"]
autostart = false
after = ["migrate"]
requires = ["migrate", "cache"]

[app.cache]
allow_root = true
kind = "process"
command = ["tool"]

[group.back]
apps = ["worker", "cache"]
`)
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	m, w, c := cfg.App("migrate"), cfg.App("worker"), cfg.App("cache")
	if m.Required || !m.Autostart || !w.Required || w.Autostart || !c.Required || !c.Autostart {
		t.Errorf("required/autostart: migrate %v/%v worker %v/%v cache %v/%v", m.Required, m.Autostart, w.Required, w.Autostart, c.Required, c.Autostart)
	}
	if got := w.Deps(); !reflect.DeepEqual(got, []string{"migrate", "cache"}) {
		t.Errorf("worker deps = %v", got)
	}
	if g := cfg.Group("back"); g == nil || !reflect.DeepEqual(g.Apps, []string{"worker", "cache"}) {
		t.Errorf("group back = %+v", g)
	}
}

func TestOrderErrors(t *testing.T) {
	dir := fixture(t)
	p := writeConfig(t, dir, `
[app.a]
allow_root = true
kind = "process"
command = ["tool"]
after = ["b"]

[app.b]
allow_root = true
kind = "process"
command = ["tool"]
requires = ["a", "nope"]

[app.c]
allow_root = true
kind = "process"
command = ["tool"]
after = ["c"]

[group.g]
apps = ["a", "ghost"]

[group.empty]
`)
	_, err := Load(p)
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v, want *Errors", err)
	}
	msg := err.Error()
	for _, want := range []string{
		`:12: app.b.requires[1]: no app named "nope"`,
		`:18: app.c.after[0]: an app cannot wait for itself`,
		`group.g.apps[1]: no app named "ghost"`,
		`group.empty.apps: required`,
		`start order has a cycle: a -> b -> a`,
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("errors lack %q:\n%s", want, msg)
		}
	}
}

// TestWaitFor: in a start an app waits for the apps of the set it names in
// after and requires; in a stop for those of the set that name it; names
// outside the set are left out.
func TestWaitFor(t *testing.T) {
	set := []*App{
		{Name: "db"},
		{Name: "web", After: []string{"db", "cache"}, Requires: []string{"db"}},
		{Name: "worker", Requires: []string{"db", "web"}},
	}
	tests := []struct {
		name    string
		reverse bool
		want    map[string][]string
	}{
		{"start", false, map[string][]string{"web": {"db"}, "worker": {"db", "web"}}},
		{"stop", true, map[string][]string{"db": {"web", "worker"}, "web": {"worker"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := WaitFor(set, tt.reverse); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("WaitFor(reverse %v) = %v, want %v", tt.reverse, got, tt.want)
			}
		})
	}
}
