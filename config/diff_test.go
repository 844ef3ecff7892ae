package config

import (
	"reflect"
	"testing"
)

// diffProcess and diffWeb are the app tables TestCompare's files are made of.
func diffProcess(name string) string {
	return "\n[app." + name + "]\nallow_root = true\nkind = \"process\"\ncommand = [\"tool\"]\n"
}

func diffWeb(name, port, extra string) string {
	return "\n[app." + name + "]\nallow_root = true\nvirtualenv = \"venv\"\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:" + port + "\"]\n" + extra
}

func TestCompare(t *testing.T) {
	dir := fixture(t)
	base := diffProcess("same") +
		diffWeb("env", "8001", "env = { V = \"1\" }\n") +
		diffWeb("health", "8002", "") +
		diffWeb("addr", "8003", "") +
		diffProcess("gone")
	next := "# a comment moves every line\n" + diffProcess("same") +
		diffWeb("env", "8001", "env = { V = \"2\" }\n") +
		diffWeb("health", "8002", "restart = \"on-failure\"\n[app.health.health]\npath = \"/up\"\n") +
		diffWeb("addr", "8004", "") +
		diffProcess("new") +
		"\n[group.g]\napps = [\"new\"]\n"
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

// TestEveryAppFieldHasUpdateClass: each field of App says in its update tag
// how an update applies a change to it, so that a new field is classified
// where it is declared rather than by a default.
func TestEveryAppFieldHasUpdateClass(t *testing.T) {
	typ := reflect.TypeFor[App]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		if _, ok := appFieldClass(f.Name); !ok {
			t.Errorf("App.%s has update tag %q; want one of inplace, reload, restart, ignore", f.Name, f.Tag.Get(updateTag))
		}
	}
	if _, ok := appFieldClass("NoSuchField"); ok {
		t.Error("a field App does not have has a class")
	}
}
