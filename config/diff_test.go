package config

import (
	"reflect"
	"testing"
)

func TestCompare(t *testing.T) {
	dir := fixture(t)
	base := `
[app.same]
allow_root = true
kind = "process"
command = ["tool"]

[app.env]
allow_root = true
virtualenv = "venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8001"]
env = { V = "1" }

[app.health]
allow_root = true
virtualenv = "venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8002"]

[app.addr]
allow_root = true
virtualenv = "venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8003"]

[app.gone]
allow_root = true
kind = "process"
command = ["tool"]
`
	next := `
# a comment moves every line
[app.same]
allow_root = true
kind = "process"
command = ["tool"]

[app.env]
allow_root = true
virtualenv = "venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8001"]
env = { V = "2" }

[app.health]
allow_root = true
virtualenv = "venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8002"]
restart = "on-failure"
[app.health.health]
path = "/up"

[app.addr]
allow_root = true
virtualenv = "venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8004"]

[app.new]
allow_root = true
kind = "process"
command = ["tool"]

[group.g]
apps = ["new"]
`
	old, err := Load(writeConfig(t, dir, base))
	if err != nil {
		t.Fatal(err)
	}
	cur, err := Load(writeConfig(t, dir, next))
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(old, cur)
	want := []AppDiff{
		{Name: "same", Change: Unchanged},
		{Name: "env", Change: Changed, Action: ActionReload, Keys: []string{"Env"}},
		{Name: "health", Change: Changed, Action: ActionInPlace, Keys: []string{"Restart", "Health"}},
		{Name: "addr", Change: Changed, Action: ActionRestart, Keys: []string{"Listen"}},
		{Name: "new", Change: Added},
		{Name: "gone", Change: Removed},
	}
	if !reflect.DeepEqual(d.Apps, want) {
		t.Errorf("apps:\n got %+v\nwant %+v", d.Apps, want)
	}
	if !d.Groups || len(d.Supervisor) != 0 {
		t.Errorf("groups changed %v, supervisor %v", d.Groups, d.Supervisor)
	}
}
