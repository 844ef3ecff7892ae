package importer

import (
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"

	"github.com/gunisup/supervisor/config"
)

// TestGoldenPassesCheck: every golden TOML is a configuration the
// supervisor accepts (config.Parse, what `supervisor check` runs), once the
// paths it names exist. The paths are moved under a temporary directory
// and made there (a virtualenv's bin/python and bin/gunicorn, executables,
// directories); users this host lacks are replaced by www-data.
func TestGoldenPassesCheck(t *testing.T) {
	tomls, err := filepath.Glob("testdata/*.toml")
	if err != nil || len(tomls) < 7 {
		t.Fatalf("testdata/*.toml: %v, %d files", err, len(tomls))
	}
	for _, file := range tomls {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".toml"), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			root := t.TempDir()
			// Commands are checked as each app's user (www-data): let it
			// search down to root (t.TempDir's parent is 0700).
			if err := os.Chmod(filepath.Dir(root), 0o755); err != nil {
				t.Fatal(err)
			}
			text := relocate(t, string(data), root)
			makePaths(t, text)
			path := filepath.Join(root, "gunisup.toml")
			if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := config.Load(path); err != nil {
				t.Fatalf("supervisor check refuses the converted %s:\n%v\n%s", file, err, text)
			}
		})
	}
}

// hostPath matches the absolute paths of the golden files that need a
// fixture: a quoted string (or unix:// address) starting with one of them.
var hostPath = regexp.MustCompile(`("|unix://)(/srv/|/home/|/var/|/run/|/usr/bin/php)`)

// relocate moves the golden file's paths under root and replaces users
// unknown here.
func relocate(t *testing.T, text, root string) string {
	t.Helper()
	text = hostPath.ReplaceAllString(text, "${1}"+root+"${2}")
	return regexp.MustCompile(`(?m)^user = "([^"]+)"$`).ReplaceAllStringFunc(text, func(line string) string {
		name := strings.TrimSuffix(strings.TrimPrefix(line, `user = "`), `"`)
		if _, err := user.Lookup(name); err != nil {
			return `user = "www-data"`
		}
		return line
	})
}

// makePaths creates what the configuration's apps point at.
func makePaths(t *testing.T, text string) {
	t.Helper()
	var doc struct {
		App map[string]struct {
			Virtualenv, Directory string
			Command, Listen       []string
			LogFile               string `toml:"log_file"`
		}
	}
	if _, err := toml.Decode(text, &doc); err != nil {
		t.Fatalf("the converted file is not TOML: %v\n%s", err, text)
	}
	write := func(p string) {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mkdir := func(p string) {
		if err := os.MkdirAll(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, a := range doc.App {
		if a.Virtualenv != "" {
			write(filepath.Join(a.Virtualenv, "bin", "python"))
			write(filepath.Join(a.Virtualenv, "bin", "gunicorn"))
		}
		if len(a.Command) > 0 && filepath.IsAbs(a.Command[0]) {
			write(a.Command[0])
		}
		if a.Directory != "" {
			mkdir(a.Directory)
		}
		if a.LogFile != "" {
			mkdir(filepath.Dir(a.LogFile))
		}
		for _, l := range a.Listen {
			if p, ok := strings.CutPrefix(l, "unix://"); ok {
				mkdir(filepath.Dir(p))
			}
		}
	}
}
