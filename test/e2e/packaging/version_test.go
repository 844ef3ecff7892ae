package packaging

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestVersionOneString: `make deb` stamps both binaries (-ldflags) and the
// .deb's Version field with the same string, scripts/version.sh's, which
// dpkg accepts. It reads make's plan (make -n) and builds nothing.
func TestVersionOneString(t *testing.T) {
	for _, tool := range []string{"make", "git", "dpkg"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(run(t, filepath.Join(root, "scripts", "version.sh")))
	if want == "" {
		t.Fatal("scripts/version.sh printed nothing")
	}
	run(t, "dpkg", "--validate-version", want)
	plan := run(t, "make", "-C", root, "--no-print-directory", "-n", "deb", "DIST="+t.TempDir())
	stamps := map[string]*regexp.Regexp{
		"supervisor -ldflags": regexp.MustCompile(`daemon\.Version=(\S+)`),
		"supctl -ldflags":     regexp.MustCompile(`internal/supctl\.Version=(\S+)`),
		"deb.sh VERSION":      regexp.MustCompile(`VERSION=(\S+) scripts/deb\.sh`),
	}
	for what, re := range stamps {
		m := re.FindAllStringSubmatch(plan, -1)
		if len(m) == 0 {
			t.Errorf("%s: not in make -n deb's plan:\n%s", what, plan)
		}
		for _, g := range m {
			if got := strings.Trim(g[1], `"'`); got != want {
				t.Errorf("%s = %q, want %q (scripts/version.sh)", what, got, want)
			}
		}
	}
}
