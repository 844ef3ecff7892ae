package contrib_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/internal/testenv"
)

// unitDir holds the example systemd units.
const unitDir = "systemd"

// maxExposure is the highest `systemd-analyze security` exposure the example
// service may reach; raise it only with a reason in README.md.
const maxExposure = 4.3

// installUnits copies the example units into a temporary directory, with
// ExecStart pointed at a real executable there (verify checks that the
// command exists), and returns the paths of the copied service and socket.
func installUnits(t *testing.T) (service, socket string) {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "supervisor")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(unitDir, "gunisup.service"))
	if err != nil {
		t.Fatal(err)
	}
	const execStart = "ExecStart=/usr/bin/supervisor "
	if n := strings.Count(string(raw), execStart); n != 1 {
		t.Fatalf("gunisup.service has %d lines starting %q, want 1", n, execStart)
	}
	unit := strings.Replace(string(raw), execStart, "ExecStart="+bin+" ", 1)
	service = filepath.Join(dir, "gunisup.service")
	if err := os.WriteFile(service, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	raw, err = os.ReadFile(filepath.Join(unitDir, "web.socket"))
	if err != nil {
		t.Fatal(err)
	}
	socket = filepath.Join(dir, "web.socket")
	if err := os.WriteFile(socket, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return service, socket
}

// TestContribUnitsVerify runs `systemd-analyze verify` on the example units
// and fails on any complaint about them (unknown keys, bad values, a missing
// command, a socket whose Service= does not load).
func TestContribUnitsVerify(t *testing.T) {
	analyze := testenv.Tool(t, "systemd-analyze", "systemd")
	service, socket := installUnits(t)
	cmd := exec.Command(analyze, "verify", "--man=no", service, socket)
	out, err := cmd.CombinedOutput()
	dir := filepath.Dir(service)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		if strings.Contains(line, "gunisup.service") || strings.Contains(line, "web.socket") || strings.Contains(line, dir) {
			t.Errorf("systemd-analyze verify: %s", line)
		} else {
			t.Logf("systemd-analyze verify (not about our units): %s", line)
		}
	}
	if err != nil {
		t.Errorf("systemd-analyze verify %s %s: %v\n%s", service, socket, err, out)
	}
}

// TestContribUnitsSettings pins the settings other parts of the supervisor
// rely on: readiness protocol, who may notify, stop timing above the 30s
// default shutdown_timeout, watchdog, and the socket name "systemd:web" uses.
func TestContribUnitsSettings(t *testing.T) {
	tests := []struct {
		file string
		want map[string]string
	}{
		{"gunisup.service", map[string]string{
			"Type":                     "notify",
			"NotifyAccess":             "main",
			"ExecReload":               "/bin/kill -HUP $MAINPID",
			"KillMode":                 "process",
			"Delegate":                 "yes",
			"RuntimeDirectoryPreserve": "yes",
			"TimeoutStopSec":           "45",
			"WatchdogSec":              "30",
			"RuntimeDirectory":         "gunisup",
			"ProtectSystem":            "strict",
			"NoNewPrivileges":          "yes",
			"Restart":                  "always",
			"RuntimeDirectoryMode":     "0755",
		}},
		{"web.socket", map[string]string{
			"ListenStream":       "127.0.0.1:8000",
			"FileDescriptorName": "web",
			"Service":            "gunisup.service",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got := unitSettings(t, filepath.Join(unitDir, tc.file))
			for key, want := range tc.want {
				if got[key] != want {
					t.Errorf("%s: %s=%q, want %q", tc.file, key, got[key], want)
				}
			}
		})
	}
}

// unitSettings returns the last value of each key in a unit file.
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := f.Close(); err != nil {
			t.Errorf("close %s: %v", path, err)
		}
	}()
	settings := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			settings[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return settings
}

// TestContribServiceExposure keeps the hardening from eroding: the offline
// `systemd-analyze security` exposure must stay at or below maxExposure.
func TestContribServiceExposure(t *testing.T) {
	analyze := testenv.Tool(t, "systemd-analyze", "systemd")
	service, _ := installUnits(t)
	out, err := exec.Command(analyze, "security", "--offline=yes", "--no-pager", service).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for gunisup\.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil && m == nil {
		if strings.Contains(string(out), "--offline") {
			t.Skipf("systemd-analyze security has no --offline (systemd < 250): %s", out)
		}
		t.Fatalf("systemd-analyze security --offline=yes %s: %v\n%s", service, err, out)
	}
	if m == nil {
		t.Fatalf("no exposure level in output:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatalf("exposure %q: %v", m[1], err)
	}
	t.Logf("exposure level %.1f", score)
	if score > maxExposure {
		t.Errorf("exposure level %.1f > %.1f:\n%s", score, maxExposure, out)
	}
}
