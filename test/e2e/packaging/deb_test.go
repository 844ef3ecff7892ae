// Package packaging builds this project's .deb with `make deb` and installs
// it into the real system beside Debian's supervisor package (supervisord),
// the package users migrate from: no path may be shared, the installed unit
// must pass `systemd-analyze verify`, every manual page must render, and
// both daemons must run at the same time from their installed
// configurations. It needs root and dpkg, and purges what it installed.
package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Paths the installed packages are checked for.
const (
	ourPkg     = "gunisup"
	debianPkg  = "supervisor"
	ourUnit    = "/usr/lib/systemd/system/gunisup.service"
	ourConfig  = "/etc/gunisup/gunisup.toml"
	ourExample = "/usr/share/doc/gunisup/examples/gunisup.toml"
	ourRunDir  = "/run/gunisup"
	debianConf = "/etc/supervisor/supervisord.conf"
	// debianLogDir is Debian's package's log directory, which its purge keeps.
	debianLogDir = "/var/log/supervisor"
)

// ourManPages are the pages the .deb installs, each rendered with man -l.
var ourManPages = []string{
	"/usr/share/man/man8/gunisup.8.gz",
	"/usr/share/man/man8/supctl.8.gz",
	"/usr/share/man/man5/gunisup.toml.5.gz",
}

// dpkgTimeout bounds waiting for the dpkg lock another installer holds.
const dpkgTimeout = 5 * time.Minute

func TestDebBesideDebianSupervisor(t *testing.T) {
	requireRootAndDpkg(t)
	if installed(t, ourPkg) {
		t.Fatalf("package %s is already installed: this test installs and purges it; remove it first (dpkg --purge %s)", ourPkg, ourPkg)
	}
	tmp := t.TempDir()
	ours := buildDeb(t, tmp)
	theirs := downloadDebian(t, tmp)
	installBoth(t, theirs, ours)

	t.Run("NoSharedPath", testNoSharedPath)
	t.Run("SystemdAnalyzeVerify", testVerifyUnit)
	t.Run("ManPages", testManPages)
	t.Run("BothDaemonsRun", testBothDaemonsRun)
}

// requireRootAndDpkg skips, saying why, unless this is a root on a dpkg system.
func requireRootAndDpkg(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: the packaging test builds a .deb and installs packages")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: installs Debian's supervisor and this project's .deb with dpkg -i (CI runs it as root)")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "dpkg-query", "apt-get", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs a Debian system with %s: %v", tool, err)
		}
	}
}

// run runs name with args and returns its combined output, failing the
// test (with that output) when it does not exit 0.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func installed(t *testing.T, pkg string) bool {
	t.Helper()
	out, err := exec.Command("dpkg-query", "-W", "-f=${Status}", pkg).Output()
	return err == nil && strings.Contains(string(out), "install ok installed")
}

// buildDeb runs `make deb` in the source tree into dir and returns the .deb.
func buildDeb(t *testing.T, dir string) string {
	t.Helper()
	root, err := filepath.Abs("../../..")
	if err != nil {
		t.Fatal(err)
	}
	out := run(t, "make", "-C", root, "--no-print-directory", "deb", "DIST="+dir)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	deb := lines[len(lines)-1]
	if !strings.HasSuffix(deb, ".deb") {
		t.Fatalf("make deb did not end with the package's path:\n%s", out)
	}
	version := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Version"))
	t.Logf("built %s (version %s)", filepath.Base(deb), version)
	// dpkg -l and --version print the same string.
	if got := run(t, filepath.Join(dir, "stage", "usr", "bin", "supervisor"), "--version"); !strings.HasPrefix(got, "supervisor "+version+" ") {
		t.Errorf("supervisor --version = %q, want it to start with the .deb's version %q", got, version)
	}
	return deb
}

// downloadDebian fetches Debian's supervisor package into dir and installs
// what it depends on (apt resolves those; dpkg -i then installs the two
// packages under test together).
func downloadDebian(t *testing.T, dir string) string {
	t.Helper()
	cmd := exec.Command("apt-get", "download", debianPkg)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") != "true" {
			t.Skipf("apt-get download %s failed (no archive reachable?): %v\n%s", debianPkg, err, out)
		}
		t.Fatalf("apt-get download %s: %v\n%s", debianPkg, err, out)
	}
	debs, err := filepath.Glob(filepath.Join(dir, debianPkg+"_*.deb"))
	if err != nil || len(debs) != 1 {
		t.Fatalf("apt-get download %s left %v (%v)", debianPkg, debs, err)
	}
	t.Logf("Debian's %s %s", debianPkg, strings.TrimSpace(run(t, "dpkg-deb", "-f", debs[0], "Version")))
	var deps []string
	for _, field := range []string{"Pre-Depends", "Depends"} {
		deps = append(deps, dependencyNames(run(t, "dpkg-deb", "-f", debs[0], field))...)
	}
	args := append([]string{"install", "-y", "-q", "--no-install-recommends", "-o", "DPkg::Lock::Timeout=300"}, deps...)
	cmd = exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("apt-get %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return debs[0]
}

// dependencyNames returns the package names of a Depends field: the first
// of each set of alternatives, without versions or architecture qualifiers.
func dependencyNames(field string) []string {
	var names []string
	for _, dep := range strings.Split(field, ",") {
		alt, _, _ := strings.Cut(dep, "|")
		name := strings.Fields(alt)
		if len(name) == 0 {
			continue
		}
		n, _, _ := strings.Cut(name[0], ":")
		names = append(names, n)
	}
	return names
}

// installBoth installs both packages in one dpkg -i (which refuses a file
// another package owns) and purges them when the test ends: ours always,
// Debian's only if it was not installed before.
func installBoth(t *testing.T, theirs, ours string) {
	t.Helper()
	hadDebian := installed(t, debianPkg)
	_, err := os.Stat(debianLogDir)
	hadLogDir := err == nil
	t.Cleanup(func() {
		purge := []string{"--purge", ourPkg}
		if !hadDebian {
			purge = append(purge, debianPkg)
		}
		if out, err := dpkg(purge...); err != nil {
			t.Errorf("dpkg %s: %v\n%s", strings.Join(purge, " "), err, out)
		}
		// Debian's purge leaves the log supervisord wrote in testBothDaemonsRun.
		if !hadLogDir {
			if err := os.RemoveAll(debianLogDir); err != nil {
				t.Error(err)
			}
		}
	})
	out, err := dpkg("-i", theirs, ours)
	if err != nil {
		t.Fatalf("dpkg -i %s %s: %v\n%s", theirs, ours, err, out)
	}
	t.Logf("dpkg -i %s %s:\n%s", filepath.Base(theirs), filepath.Base(ours), out)
}

// dpkg runs dpkg with args, waiting up to dpkgTimeout while another
// installer holds its lock.
func dpkg(args ...string) ([]byte, error) {
	deadline := time.Now().Add(dpkgTimeout)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		out, err := exec.Command("dpkg", args...).CombinedOutput()
		if err == nil || !bytes.Contains(out, []byte("lock")) || time.Now().After(deadline) {
			return out, err
		}
		<-tick.C
	}
}
