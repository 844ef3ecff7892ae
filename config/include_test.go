package config

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// writeFiles writes each text, with $TMP replaced by dir, to dir/NAME.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, text := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(strings.ReplaceAll(text, "$TMP", dir)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

const includeMain = `[supervisor]
include = ["conf.d/*.toml"]

[app.main]
allow_root = true
kind = "process"
command = ["tool"]
`

const includedApp = `
[app.%s]
allow_root = true
kind = "process"
command = ["tool"]
`

func included(name string) string { return strings.ReplaceAll(includedApp, "%s", name) }

func TestIncludeLoads(t *testing.T) {
	dir := fixture(t)
	writeFiles(t, dir, map[string]string{
		"conf.d/b.toml": included("b") + "\n[group.g]\napps = [\"a\", \"main\"]\n",
		// Relative paths are relative to the included file's directory.
		"conf.d/a.toml": included("a") + "directory = \"../app\"\n",
		"conf.d/x.txt":  "not toml",
	})
	if err := os.Mkdir(filepath.Join(dir, "conf.d", "d.toml"), 0o755); err != nil {
		t.Fatal(err) // a directory matching the glob is skipped
	}
	path := writeConfig(t, dir, includeMain)
	cfg, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range cfg.Apps {
		names = append(names, a.Name)
	}
	if want := []string{"main", "a", "b"}; !slices.Equal(names, want) {
		t.Errorf("apps = %v, want %v (main file first, then included files sorted)", names, want)
	}
	if got, want := cfg.App("a").Directory, filepath.Join(dir, "app"); got != want {
		t.Errorf("a.Directory = %q, want %q", got, want)
	}
	if got, want := cfg.App("b").Directory, filepath.Join(dir, "conf.d"); got != want {
		t.Errorf("b.Directory = %q, want %q (the included file's directory)", got, want)
	}
	if len(cfg.Groups) != 1 || !slices.Equal(cfg.Groups[0].Apps, []string{"a", "main"}) {
		t.Errorf("groups = %+v, want g with a and main", cfg.Groups)
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct {
		name  string
		main  string
		files map[string]string
	}{
		{"include_supervisor", includeMain, map[string]string{
			"conf.d/a.toml": included("a") + "\n[supervisor]\nhttp = \"\"\n"}},
		{"include_top_level_key", includeMain, map[string]string{
			"conf.d/a.toml": "include = [\"x\"]\n" + included("a")}},
		{"include_duplicate", includeMain, map[string]string{
			"conf.d/a.toml": included("a"),
			"conf.d/b.toml": "\n\n" + included("main") + included("a")}},
		{"include_syntax", includeMain, map[string]string{
			"conf.d/a.toml": included("a") + "workers = \n"}},
		{"include_key_errors", includeMain + "stop_timeout = \"x\"\n", map[string]string{
			"conf.d/a.toml": included("a") + "restart = \"sometimes\"\n[app.a.health]\npath = \"x\"\n",
			"conf.d/b.toml": included("b") + "stop_signal = \"NOPE\"\n"}},
		{"include_pattern", "[supervisor]\ninclude = [\"conf.d/[\", \"\"]\n" + included("main"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fixture(t)
			writeFiles(t, dir, tt.files)
			cfg, err := Load(writeConfig(t, dir, tt.main))
			checkGolden(t, dir, tt.name, cfg, err)
		})
	}
}

// TestIncludeReread: a second Load sees a file added to the included
// directory and an edit to an included file, as supctl reread does.
func TestIncludeReread(t *testing.T) {
	dir := fixture(t)
	writeFiles(t, dir, map[string]string{"conf.d/a.toml": included("a")})
	path := writeConfig(t, dir, includeMain)
	before, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{
		"conf.d/a.toml": included("a") + "stop_timeout = \"5s\"\n",
		"conf.d/b.toml": included("b"),
	})
	after, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	d := Compare(before, after)
	got := map[string]string{}
	for _, a := range d.Apps {
		got[a.Name] = a.Change.String()
	}
	want := map[string]string{"main": "unchanged", "a": "changed", "b": "added"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("app %s: %q, want %q (diff %+v)", k, got[k], v, d)
		}
	}
	if len(d.Supervisor) != 0 {
		t.Errorf("supervisor changes %v, want none", d.Supervisor)
	}
}
