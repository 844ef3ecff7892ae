package reload

import (
	"errors"
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

// releases makes releases a and b under a temporary directory and a link
// "current" to a; it returns the directory.
func releases(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{"a", "b"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(filepath.Join(dir, "a"), filepath.Join(dir, "current")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestLinkFacts(t *testing.T) {
	dir := releases(t)
	a, current := filepath.Join(dir, "a"), filepath.Join(dir, "current")
	for _, tt := range []struct {
		name string
		link string
		want Facts
	}{
		{"no link", "", Facts{RunsIn: a}},
		{"link", current, Facts{Link: current, LinkTarget: a, RunsIn: a}},
		{"link that does not resolve", filepath.Join(dir, "dangling"), Facts{RunsIn: a}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := LinkFacts(tt.link, a, false); got != tt.want {
				t.Errorf("LinkFacts = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestTargets(t *testing.T) {
	dir := releases(t)
	a, b, current := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "current")
	for _, tt := range []struct {
		name, link, release, dir string
		target, previous, err    string
	}{
		{"reload of the link's release", current, "", "", a, "", ""},
		{"reload in a given release", current, "", b, b, "", ""},
		{"reload without a link", "", "", "", "", "", ""},
		{"reload through a dangling link", filepath.Join(dir, "dangling"), "", "", "", "", ""},
		{"deploy", current, b, "", b, a, ""},
		{"deploy without a link", a, b, "", "", "", "not a symlink"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target, previous, err := Targets(tt.link, tt.release, tt.dir)
			if target != tt.target || previous != tt.previous || !strings.Contains(errText(err), tt.err) || (err != nil) != (tt.err != "") {
				t.Errorf("Targets = %q, %q, %v; want %q, %q, error %q", target, previous, err, tt.target, tt.previous, tt.err)
			}
		})
	}
}

func TestPointBack(t *testing.T) {
	for _, tt := range []struct {
		name, link, release string
		moved               bool
		err                 string
	}{
		{"moves a link a deploy moved", "current", "b", true, ""},
		{"already there", "current", "a", false, ""},
		{"not a link", "a", "b", false, ""},
		{"no link", "", "b", false, ""},
		{"no release", "current", "", false, ""},
		{"release gone", "current", "nope", false, "release"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := releases(t)
			at := func(name string) string {
				if name == "" {
					return ""
				}
				return filepath.Join(dir, name)
			}
			prev, moved, err := PointBack(at(tt.link), at(tt.release))
			if moved != tt.moved || !strings.Contains(errText(err), tt.err) || (err != nil) != (tt.err != "") {
				t.Fatalf("PointBack = %q, %v, %v; want moved %v, error %q", prev, moved, err, tt.moved, tt.err)
			}
			got, _ := os.Readlink(filepath.Join(dir, "current"))
			want := at("a")
			if moved {
				want = at(tt.release)
				if prev != at("a") {
					t.Errorf("previous %q, want %q", prev, at("a"))
				}
			}
			if got != want {
				t.Errorf("current -> %q, want %q", got, want)
			}
		})
	}
}

// TestDeploy: the link points at the release while the steps run, stays
// there when they succeed and points back when they fail; a release that
// cannot be pointed at runs nothing.
func TestDeploy(t *testing.T) {
	boom := errors.New("boom")
	for _, tt := range []struct {
		name, release string
		stepsErr      error
		ran           bool
		want          string // the link's target after
		err           error
	}{
		{"taken over", "b", nil, true, "b", nil},
		{"failed", "b", boom, true, "a", boom},
		{"release gone", "nope", nil, false, "a", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := releases(t)
			link := filepath.Join(dir, "current")
			var ran bool
			var lines []string
			err := Deploy(link, filepath.Join(dir, tt.release), func(s string) { lines = append(lines, s) }, func() error {
				ran = true
				if got, _ := os.Readlink(link); got != filepath.Join(dir, tt.release) {
					t.Errorf("during the steps the link points at %q", got)
				}
				return tt.stepsErr
			})
			if ran != tt.ran || (tt.err != nil && !errors.Is(err, tt.err)) || (err == nil) != (tt.ran && tt.err == nil) {
				t.Errorf("Deploy: ran %v, err %v; want ran %v, err %v", ran, err, tt.ran, tt.err)
			}
			if got, _ := os.Readlink(link); got != filepath.Join(dir, tt.want) {
				t.Errorf("link -> %q after, want %q (progress %q)", got, filepath.Join(dir, tt.want), lines)
			}
		})
	}
}
