package packaging

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
)

const (
	// startTimeout bounds each daemon's start until its client sees it.
	startTimeout = 30 * time.Second
	// stopTimeout bounds each daemon's exit after SIGTERM, then SIGKILL.
	stopTimeout = 30 * time.Second
)

// testBothDaemonsRun: systemd is not PID 1 here, so each daemon is started
// by hand as its unit would start it: Debian's supervisord with its
// installed /etc/supervisor/supervisord.conf, ours with the installed
// example configuration copied to /etc/gunisup/gunisup.toml (metrics
// listener off, so that no other test's port matters). Both must answer
// their own clients (supervisorctl, supctl on /run/gunisup/control.sock)
// while the other runs.
func testBothDaemonsRun(t *testing.T) {
	t.Logf("%s", run(t, "/usr/bin/supervisor", "check", "-c", ourExample))
	writeOurConfig(t)
	debPID := startSupervisord(t)
	ours := startDaemon(t, "/usr/bin/supervisor", "-c", ourConfig)
	testenv.WaitForState(t, startTimeout, "supctl status to show the example app running", func() (bool, string) {
		out, err := exec.Command("/usr/bin/supctl", "status").CombinedOutput()
		return err == nil && appRunning(string(out), "heartbeat"), string(out)
	})
	if got := supervisordPID(); got != debPID {
		t.Errorf("supervisorctl pid = %d while ours runs, want %d", got, debPID)
	}
	version := run(t, "/usr/bin/supctl", "version")
	if want := fmt.Sprintf("(pid %d) on /run/gunisup/control.sock", ours.Process.Pid); !strings.Contains(version, want) {
		t.Errorf("supctl version = %q, want it to contain %q", version, want)
	}
	t.Logf("both running: supervisord pid %d (supervisorctl pid), ours pid %d:\n%s%s",
		debPID, ours.Process.Pid, run(t, "/usr/bin/supctl", "status"), version)
}

// appRunning reports whether supctl's status table shows app running.
func appRunning(table, app string) bool {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == app && f[1] == "running" {
			return true
		}
	}
	return false
}

// writeOurConfig installs the example as /etc/gunisup/gunisup.toml until
// the test ends; /run/gunisup, which the daemon creates, goes too.
func writeOurConfig(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(ourConfig); err == nil {
		t.Fatalf("%s exists: not overwriting an administrator's configuration", ourConfig)
	}
	_, err := os.Stat(ourRunDir)
	hadRunDir := err == nil
	raw, err := os.ReadFile(ourExample)
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(string(raw), `http = "127.0.0.1:9321"`, `http = ""`, 1)
	if conf == string(raw) {
		t.Fatalf("%s has no line http = \"127.0.0.1:9321\" to turn the metrics listener off", ourExample)
	}
	if err := os.WriteFile(ourConfig, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.Remove(ourConfig); err != nil {
			t.Error(err)
		}
		if !hadRunDir {
			if err := os.RemoveAll(ourRunDir); err != nil {
				t.Error(err)
			}
		}
	})
}

// startSupervisord starts Debian's supervisord in the foreground with its
// installed configuration, unless its postinst already started it, and
// returns the PID supervisorctl reports.
func startSupervisord(t *testing.T) int {
	t.Helper()
	if pid := supervisordPID(); pid > 0 {
		t.Logf("supervisord already runs (pid %d, started by its postinst); dpkg --purge stops it", pid)
		return pid
	}
	cmd := startDaemon(t, "/usr/bin/supervisord", "-n", "-c", debianConf)
	testenv.WaitForState(t, startTimeout, "supervisorctl pid to answer", func() (bool, string) {
		pid := supervisordPID()
		return pid == cmd.Process.Pid, fmt.Sprintf("supervisorctl pid = %d, started %d", pid, cmd.Process.Pid)
	})
	return cmd.Process.Pid
}

// supervisordPID asks supervisorctl for supervisord's PID (0: no answer).
func supervisordPID() int {
	out, err := exec.Command("/usr/bin/supervisorctl", "-c", debianConf, "pid").Output()
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0
	}
	return pid
}

// startDaemon starts a daemon with its output in a file, and stops it when
// the test ends: SIGTERM, then SIGKILL after stopTimeout. Its output is
// logged if the test failed.
func startDaemon(t *testing.T, name string, args ...string) *exec.Cmd {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), filepath.Base(name)+".log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM) // it may have exited already; Wait reports how
		select {
		case err := <-done:
			t.Logf("%s exited after SIGTERM: %v", name, err)
		case <-time.After(stopTimeout):
			t.Errorf("%s still runs %s after SIGTERM: killing it", name, stopTimeout)
			_ = cmd.Process.Kill() // exits now; Wait below reaps it
			<-done
		}
		_ = logFile.Close() // written by the child only, which has exited
		if out, err := os.ReadFile(logPath); t.Failed() && err == nil {
			t.Logf("%s output:\n%s", name, out)
		}
	})
	return cmd
}
