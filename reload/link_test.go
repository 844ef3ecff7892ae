package reload

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPointLink(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(dir, "current")
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	prev, err := PointLink(link, b)
	if err != nil {
		t.Fatal(err)
	}
	if prev != a {
		t.Errorf("previous = %q, want %q", prev, a)
	}
	if got, _ := os.Readlink(link); got != b {
		t.Errorf("link -> %q, want %q", got, b)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".current.deploy-tmp")); !os.IsNotExist(err) {
		t.Errorf("temporary link left behind: %v", err)
	}
	for _, tc := range []struct{ name, link, target, want string }{
		{"missing release", link, filepath.Join(dir, "nope"), "release"},
		{"release is a file", link, filepath.Join(dir, "file"), "not a directory"},
		{"link is a directory", a, b, "not a symlink"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.WriteFile(filepath.Join(dir, "file"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := PointLink(tc.link, tc.target)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if got, _ := os.Readlink(link); got != b {
				t.Errorf("a refused deploy moved the link to %q", got)
			}
		})
	}
}
