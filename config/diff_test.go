package config

import (
	"errors"
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

// planApp is a process app named name running argv cmd.
func planApp(name, cmd string) *App {
	return &App{Name: name, Kind: KindProcess, Command: []string{cmd}}
}

// TestPlanUpdate: an update concerns the apps named in only (every app
// of the diff when empty), in diff order, each with its new table; the
// merged configuration takes those apps' new versions and keeps the
// running versions of the others, and the new groups only when the update
// concerns every app.
func TestPlanUpdate(t *testing.T) {
	cur := &Config{Path: "cur.toml",
		Apps:   []*App{planApp("keep", "a"), planApp("chg", "a"), planApp("gone", "a")},
		Groups: []Group{{Name: "g", Apps: []string{"keep", "gone"}}}}
	next := &Config{Path: "next.toml",
		Apps:   []*App{planApp("keep", "a"), planApp("chg", "b"), planApp("new", "a")},
		Groups: []Group{{Name: "g", Apps: []string{"new"}}}}
	tests := []struct {
		name   string
		only   []string
		apps   []string // name:change of the plan
		merged []string // name:command of the merged apps
		groups []Group
		noSuch bool
	}{
		{name: "all", apps: []string{"keep:unchanged", "chg:changed", "new:added", "gone:removed"},
			merged: []string{"keep:a", "chg:b", "new:a"}, groups: next.Groups},
		{name: "one changed", only: []string{"chg"}, apps: []string{"chg:changed"},
			merged: []string{"keep:a", "chg:b", "gone:a"}, groups: cur.Groups},
		{name: "one removed", only: []string{"gone"}, apps: []string{"gone:removed"},
			merged: []string{"keep:a", "chg:a"}, groups: []Group{{Name: "g", Apps: []string{"keep"}}}},
		{name: "one added", only: []string{"new"}, apps: []string{"new:added"},
			merged: []string{"keep:a", "chg:a", "new:a", "gone:a"}, groups: cur.Groups},
		{name: "unknown", only: []string{"chg", "nope"}, noSuch: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PlanUpdate(cur, next, tt.only)
			if tt.noSuch {
				if !errors.Is(err, ErrNoSuchApp) {
					t.Fatalf("err %v, want ErrNoSuchApp", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var apps, merged []string
			for _, u := range p.Apps {
				apps = append(apps, u.Name+":"+u.Change.String())
				if (u.App == nil) != (u.Change == Removed) || (u.App != nil && u.App != next.App(u.Name)) {
					t.Errorf("%s: table %v, want next's (nil when removed)", u.Name, u.App)
				}
			}
			for _, a := range p.Merged.Apps {
				merged = append(merged, a.Name+":"+a.Command[0])
			}
			if !reflect.DeepEqual(apps, tt.apps) || !reflect.DeepEqual(merged, tt.merged) {
				t.Errorf("plan %v merged %v, want %v %v", apps, merged, tt.apps, tt.merged)
			}
			if !reflect.DeepEqual(p.Merged.Groups, tt.groups) || p.Merged.Path != cur.Path {
				t.Errorf("merged groups %v path %s, want %v %s", p.Merged.Groups, p.Merged.Path, tt.groups, cur.Path)
			}
		})
	}
	if cur.Groups[0].Apps[1] != "gone" {
		t.Errorf("the running groups were changed: %v", cur.Groups)
	}
}

// TestOutcome: an app's update result in one line.
func TestOutcome(t *testing.T) {
	tests := []struct {
		d    AppDiff
		err  error
		want string
	}{
		{AppDiff{Name: "a", Change: Unchanged}, nil, "unchanged"},
		{AppDiff{Name: "a", Change: Changed, Action: ActionReload, Keys: []string{"env"}}, nil, "changed [env]: reload"},
		{AppDiff{Name: "a", Change: Changed, Action: ActionInPlace, Keys: []string{"restart", "health.path"}}, nil, "changed [restart health.path]: in place"},
		{AppDiff{Name: "a", Change: Added}, errors.New("boom"), "added: boom"},
	}
	for _, tt := range tests {
		if got := tt.d.Outcome(tt.err); got != tt.want {
			t.Errorf("Outcome(%+v, %v) = %q, want %q", tt.d, tt.err, got, tt.want)
		}
	}
}
