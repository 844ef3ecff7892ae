package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/internal/testenv"
)

// packageFiles returns the non-directory paths dpkg -L lists for pkg, keyed
// by their canonical path (parent symlinks resolved, so /lib/x and /usr/lib/x
// meet on a merged-/usr system), and the directories it lists.
func packageFiles(t *testing.T, pkg string) (files map[string]string, dirs []string) {
	t.Helper()
	files = map[string]string{}
	for _, p := range strings.Split(strings.TrimSpace(run(t, "dpkg", "-L", pkg)), "\n") {
		if p == "/." || p == "" {
			continue
		}
		fi, err := os.Lstat(p)
		if err == nil && fi.IsDir() {
			dirs = append(dirs, p)
			continue
		}
		parent, err := filepath.EvalSymlinks(filepath.Dir(p))
		if err != nil {
			parent = filepath.Dir(p)
		}
		files[filepath.Join(parent, filepath.Base(p))] = p
	}
	return files, dirs
}

// testNoSharedPath: no file is listed by both packages, no directory named
// after either project is shared, and the names that collided before
// (unit, /etc, /var/log, man page) belong to Debian's package only.
func testNoSharedPath(t *testing.T) {
	ourFiles, ourDirs := packageFiles(t, ourPkg)
	theirFiles, theirDirs := packageFiles(t, debianPkg)
	for canon, p := range ourFiles {
		if q, ok := theirFiles[canon]; ok {
			t.Errorf("both packages install %s (ours as %s, Debian's as %s)", canon, p, q)
		}
	}
	shared := 0
	for _, d := range ourDirs {
		if slices.Contains(theirDirs, d) {
			shared++
			if strings.Contains(d, "supervisor") || strings.Contains(d, "gunisup") {
				t.Errorf("both packages own the directory %s", d)
			}
		}
	}
	t.Logf("%s: %d files, %d directories; %s: %d files, %d directories; %d common system directories (/usr/bin, /etc, ...), no common file",
		ourPkg, len(ourFiles), len(ourDirs), debianPkg, len(theirFiles), len(theirDirs), shared)
	for _, p := range []string{"/etc/supervisor", "/var/log/supervisor"} {
		if !slices.Contains(theirDirs, p) || slices.Contains(ourDirs, p) {
			t.Errorf("%s: want it owned by %s only", p, debianPkg)
		}
	}
	if !slices.Contains(ourDirs, "/etc/gunisup") {
		t.Errorf("%s does not own /etc/gunisup", ourPkg)
	}
	for _, want := range append([]string{ourUnit, "/usr/bin/supervisor", "/usr/bin/supctl", ourExample}, ourManPages...) {
		if !mapHasValue(ourFiles, want) {
			t.Errorf("%s does not install %s", ourPkg, want)
		}
	}
	for _, p := range []string{"/lib/systemd/system/supervisor.service", "/usr/share/man/man1/supervisor.1.gz", "/usr/bin/supervisord"} {
		if !mapHasValue(theirFiles, p) {
			t.Errorf("%s does not install %s: the collision this test guards against is not being tested", debianPkg, p)
		}
	}
}

func mapHasValue(m map[string]string, v string) bool {
	for _, x := range m {
		if x == v {
			return true
		}
	}
	return false
}

// testVerifyUnit runs systemd-analyze verify (which also checks that the
// Documentation= man pages exist) on the installed unit.
func testVerifyUnit(t *testing.T) {
	analyze := testenv.Tool(t, "systemd-analyze", "systemd")
	out, err := exec.Command(analyze, "verify", ourUnit).CombinedOutput()
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		switch {
		case line == "":
		case strings.Contains(line, "gunisup"):
			t.Errorf("systemd-analyze verify: %s", line)
		default:
			t.Logf("systemd-analyze verify (not about %s): %s", ourUnit, line)
		}
	}
	if err != nil {
		t.Errorf("systemd-analyze verify %s: %v\n%s", ourUnit, err, out)
	}
}

// testManPages renders every installed page with man -l (no groff warning
// allowed) and checks that man finds each by name, while `man supervisor`
// still opens Debian's page.
func testManPages(t *testing.T) {
	for _, page := range ourManPages {
		cmd := exec.Command("man", "--warnings", "-l", page)
		cmd.Env = append(os.Environ(), "MANWIDTH=80", "MANPAGER=cat", "PAGER=cat")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil || stderr.Len() > 0 {
			t.Errorf("man -l %s: %v\n%s", page, err, stderr.String())
		}
		file := strings.TrimSuffix(filepath.Base(page), ".gz") // gunisup.toml.5
		dot := strings.LastIndex(file, ".")
		header := strings.ToUpper(file[:dot]) + "(" + file[dot+1:] + ")" // GUNISUP.TOML(5)
		if !strings.HasPrefix(string(out), header) || !strings.Contains(string(out), "\nNAME\n") {
			t.Errorf("man -l %s: want a page starting %s with a NAME section:\n%s", page, header, out)
		}
		t.Logf("man -l %s: %d lines", page, strings.Count(string(out), "\n"))
	}
	for name, want := range map[string]string{
		"gunisup":      "/usr/share/man/man8/gunisup.8.gz",
		"supctl":       "/usr/share/man/man8/supctl.8.gz",
		"gunisup.toml": "/usr/share/man/man5/gunisup.toml.5.gz",
		"supervisor":   "/usr/share/man/man1/supervisor.1.gz",
	} {
		out, err := exec.Command("man", "-w", name).Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != want {
			t.Errorf("man -w %s = %q (%v), want %s", name, got, err, want)
		}
	}
}
