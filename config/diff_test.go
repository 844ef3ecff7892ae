package config

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
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
		{Name: "env", Change: Changed, Action: ActionReload, Keys: []string{"env"}},
		{Name: "health", Change: Changed, Action: ActionInPlace, Keys: []string{"restart", "health.path"}},
		{Name: "addr", Change: Changed, Action: ActionRestart, Keys: []string{"listen"}},
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

// TestEveryAppFieldHasKey: each field of App (and of its struct fields
// without a key of their own) names the configuration key it is read from,
// and that key is one gunisup.toml(5) documents, so reread and update name
// what the user wrote.
func TestEveryAppFieldHasKey(t *testing.T) {
	man, err := os.ReadFile(filepath.Join("..", "docs", "man", "gunisup.toml.5.md"))
	if err != nil {
		t.Fatal(err)
	}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			key := f.Tag.Get(keyTag)
			switch {
			case key == "" && f.Type.Kind() == reflect.Struct:
				walk(f.Type, path+f.Name+".")
			case key == "":
				t.Errorf("%s%s has no key tag", path, f.Name)
			case key != "-" && key != "app":
				last := key[strings.LastIndex(key, ".")+1:]
				if !regexp.MustCompile(`(?m)(^|[\s#])` + regexp.QuoteMeta(last) + ` = |\*\*` + regexp.QuoteMeta(last) + `\*\*`).Match(man) {
					t.Errorf("%s%s: key %q is not in gunisup.toml.5.md", path, f.Name, key)
				}
			}
		}
	}
	walk(reflect.TypeFor[App](), "App.")
}
