package launch

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/config"
)

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	bin, noexec := filepath.Join(dir, "bin"), filepath.Join(dir, "noexec")
	for _, d := range []string{bin, noexec, filepath.Join(bin, "sub")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "app"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(noexec, "app"), []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := noexec + "::" + bin
	for _, tc := range []struct{ name, arg, path, want, err string }{
		{"first executable in PATH", "app", path, filepath.Join(bin, "app"), ""},
		{"not found", "nope", path, "", "not found in PATH"},
		{"a directory is not executable", "sub", bin, "", "not found in PATH"},
		{"a path is taken as it is", filepath.Join(bin, "app"), "", filepath.Join(bin, "app"), ""},
		{"a path not executable", filepath.Join(noexec, "app"), path, "", "not executable"},
		{"a path to a directory", filepath.Join(bin, "sub"), path, "", "not a regular file"},
		{"a missing path", filepath.Join(dir, "gone"), path, "", "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := LookPath(tc.arg, tc.path)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("LookPath(%q) = %q, %v; want an error with %q", tc.arg, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("LookPath(%q) = %q, %v; want %q", tc.arg, got, err, tc.want)
			}
		})
	}
}

func TestProcessSpec(t *testing.T) {
	app := &config.App{Name: "worker", Command: []string{"/bin/true", "-x"}}
	env := []string{"PATH=/usr/bin:/bin"}
	spec, err := Process(app, env, "/srv", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(spec.Argv, []string{"/bin/true", "-x"}) || spec.Dir != "/srv" || spec.Cred != nil {
		t.Errorf("spec without sockets: %+v", spec)
	}
	spec, err = Process(app, env, "/srv", []int{3, 4}, []string{"worker", "worker"})
	if err != nil {
		t.Fatal(err)
	}
	if spec.Argv[0] != "/bin/sh" || spec.Argv[len(spec.Argv)-2] != "/bin/true" {
		t.Errorf("sockets without the LISTEN_PID shim: %q", spec.Argv)
	}
	if !slices.Contains(spec.Env, "LISTEN_FDS=2") || !slices.Contains(spec.Env, "LISTEN_FDNAMES=worker:worker") {
		t.Errorf("env %q lacks LISTEN_FDS and LISTEN_FDNAMES", spec.Env)
	}
	app.Command = []string{"nope"}
	if _, err := Process(app, env, "/srv", nil, nil); err == nil || !strings.Contains(err.Error(), "app worker") {
		t.Errorf("missing command: %v, want an error naming the app", err)
	}
}
