package core

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// nobodyUID is the uid of the app user in these tests.
const nobodyUID = 65534

// rootSecret is the content of the root-only file the app user aims at.
const rootSecret = "ROOT_SECRET=hunter2\n"

// asNobody runs argv as nobody (the app's user planting a link), failing
// the test if it fails.
func asNobody(t *testing.T, argv ...string) {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyUID, Gid: nobodyUID}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %v: %v: %s", argv, err, out)
	}
}

// safeFilesSetup makes dir reachable by nobody, a directory home owned by
// nobody (the app's own log and env directory), and secrets/secret.env, a
// root-only file nobody cannot read.
func safeFilesSetup(t *testing.T, dir string) {
	mustChmod(t, dir, 0o755)
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(secrets, "secret.env"), []byte(rootSecret), 0o600); err != nil {
		t.Fatal(err)
	}
}

// plant makes home/name lead to the secret the way the case says: a
// symbolic link made by nobody, a hard link (made by root: with
// fs.protected_hardlinks = 1, as here, nobody may not link a root file;
// systems without it let it), or a symbolic link to the secret's directory
// in place of the directory sub.
func plant(t *testing.T, dir, how, name string) {
	home, secret := filepath.Join(dir, "home"), filepath.Join(dir, "secrets", "secret.env")
	switch how {
	case "symlink":
		asNobody(t, "/bin/rm", "-f", filepath.Join(home, name))
		asNobody(t, "/bin/ln", "-s", secret, filepath.Join(home, name))
	case "hard link":
		if err := os.Remove(filepath.Join(home, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		if err := os.Link(secret, filepath.Join(home, name)); err != nil {
			t.Fatal(err)
		}
	case "symlinked parent":
		asNobody(t, "/bin/rm", "-rf", filepath.Join(home, "sub"))
		asNobody(t, "/bin/ln", "-s", filepath.Dir(secret), filepath.Join(home, "sub"))
	}
}

// checkSecretUnchanged fails the test if the root-only file changed.
func checkSecretUnchanged(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "secrets", "secret.env"))
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != rootSecret {
		t.Fatalf("the root-only file changed: %q", b)
	}
	ents, err := os.ReadDir(filepath.Join(dir, "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 {
		t.Fatalf("files were created beside the root-only file: %v", ents)
	}
}

// supervisorCheck runs `supervisor check` on the running configuration and
// returns its exit code and output.
func supervisorCheck(t *testing.T, s *e2e.Supervisor) (int, string) {
	t.Helper()
	out, err := exec.Command(s.Bin, "check", "-c", s.Config).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return ee.ExitCode(), string(bytes.TrimSpace(out))
	case err != nil:
		t.Fatal(err)
	}
	return 0, string(bytes.TrimSpace(out))
}

// TestLogFileLinksRefused: the app (as nobody) owns its log directory and
// replaces its log file with a symbolic link to a root-only file, a hard
// link to it, or puts the file's directory on a symbolic link to the
// file's directory. `supctl logs --reopen` (what logrotate runs) is refused
// naming the path, not a byte reaches the target, and `supervisor check`
// refuses the configuration naming file, line and key.
func TestLogFileLinksRefused(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct{ how, file, want string }{
		{"symlink", "secret.env", "secret.env is a symbolic link: refused"},
		{"hard link", "secret.env", "secret.env has 2 hard links: refused"},
		{"symlinked parent", "sub/secret.env", "sub is a symbolic link that a user other than root could have made"},
	} {
		t.Run(strings.ReplaceAll(c.how, " ", "_"), func(t *testing.T) {
			s := e2e.Start(t, e2e.Options{Config: logsHeader + `
[app.ticker]
user = "nobody"
kind = "process"
directory = "/"
command = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.05; done"]
log = "file"
log_file = "@DIR@/home/` + c.file + `"
`, Setup: func(dir string) {
				safeFilesSetup(t, dir)
				if c.how == "symlinked parent" {
					asNobody(t, "/bin/mkdir", filepath.Join(dir, "home", "sub"))
				}
			}})
			path := filepath.Join(s.Dir, "home", c.file)
			testenv.WaitFor(t, 30*time.Second, "ticks in the log file", func() bool {
				b, err := os.ReadFile(path)
				return err == nil && lastNumber(string(b), "tick") > 0
			})
			plant(t, s.Dir, c.how, filepath.Base(c.file))
			out, code := s.SupctlRun("logs", "ticker", "--reopen")
			t.Logf("supctl logs ticker --reopen: exit %d: %s", code, strings.TrimSpace(out))
			if code == 0 || !strings.Contains(out, path) || !strings.Contains(out, c.want) {
				t.Errorf("reopen: exit %d, output %q; want non-zero naming %s and %q", code, out, path, c.want)
			}
			// The app logs on; its lines are dropped, not written through
			// the link.
			testenv.WaitFor(t, 30*time.Second, "lines counted as dropped", func() bool {
				return s.App("ticker").LogDropped > 0
			})
			checkSecretUnchanged(t, s.Dir)
			code, out = supervisorCheck(t, s)
			t.Logf("supervisor check: exit %d: %s", code, out)
			if code != 2 || !strings.Contains(out, s.Config+":") || !strings.Contains(out, "app.ticker.log_file: "+path) || !strings.Contains(out, c.want) {
				t.Errorf("supervisor check: exit %d, output %q; want 2 naming the file, line, key and %q", code, out, c.want)
			}
		})
	}
}

// TestEnvFileLinksRefused: the app (as nobody) replaces its env file with a
// symbolic link to a root-only file, or a hard link to it, or its
// directory with a symbolic link to the secret's directory, then has
// itself restarted. The start is refused naming the path, the secret never
// reaches the app's environment, and `supervisor check` refuses the
// configuration.
func TestEnvFileLinksRefused(t *testing.T) {
	requireRoot(t)
	for _, c := range []struct{ how, file, want string }{
		{"symlink", "secret.env", "secret.env is a symbolic link that a user other than root could have made"},
		{"hard link", "secret.env", "secret.env has 2 hard links: refused"},
		{"symlinked parent", "sub/secret.env", "sub is a symbolic link that a user other than root could have made"},
	} {
		t.Run(strings.ReplaceAll(c.how, " ", "_"), func(t *testing.T) {
			s := e2e.Start(t, e2e.Options{Config: logsHeader + `
[app.printer]
user = "nobody"
kind = "process"
directory = "/"
env_file = "@DIR@/home/` + c.file + `"
command = ["/bin/sh", "-c", "echo \"secret=[$ROOT_SECRET] app=[$APP_VALUE]\"; exec sleep 3600"]
`, Setup: func(dir string) {
				safeFilesSetup(t, dir)
				if c.how == "symlinked parent" {
					asNobody(t, "/bin/mkdir", filepath.Join(dir, "home", "sub"))
				}
				asNobody(t, "/bin/sh", "-c", "echo APP_VALUE=mine > "+filepath.Join(dir, "home", c.file))
			}})
			path := filepath.Join(s.Dir, "home", c.file)
			s.WaitState("printer", control.StateRunning, 30*time.Second)
			testenv.WaitFor(t, 30*time.Second, "the app's own value", func() bool {
				out, _ := s.SupctlRun("logs", "printer", "-n", "5")
				return strings.Contains(out, "app=[mine]")
			})
			plant(t, s.Dir, c.how, filepath.Base(c.file))
			out, code := s.SupctlRun("restart", "printer")
			t.Logf("supctl restart printer: exit %d: %s", code, strings.TrimSpace(out))
			// The start after the stop fails: the app waits in backoff, its
			// status naming the path and the refusal.
			var msg string
			testenv.WaitFor(t, 30*time.Second, "the refused start in the app's status", func() bool {
				a := s.App("printer")
				msg = a.Message
				return a.State != control.StateRunning && strings.Contains(msg, path) && strings.Contains(msg, c.want)
			})
			t.Logf("status: %s", msg)
			logs, _ := s.SupctlRun("logs", "printer", "-n", "50")
			if strings.Contains(logs, "hunter2") || strings.Contains(s.Output(), "hunter2") {
				t.Fatalf("the root-only secret reached the app:\n%s", logs)
			}
			checkSecretUnchanged(t, s.Dir)
			code, out = supervisorCheck(t, s)
			t.Logf("supervisor check: exit %d: %s", code, out)
			if code != 2 || !strings.Contains(out, "app.printer.env_file: "+path) || !strings.Contains(out, c.want) {
				t.Errorf("supervisor check: exit %d, output %q; want 2 naming the key and %q", code, out, c.want)
			}
		})
	}
}

// TestLogFileCopytruncateAndLongLine: after a copytruncate (copy the file,
// truncate it to 0, as logrotate's copytruncate does) the supervisor's next
// lines go to the start of the file: no hole, no NUL byte, every line
// whole; then a 2 MiB line reaches the file in all its 32 pieces, and no
// line is counted as dropped.
func TestLogFileCopytruncateAndLongLine(t *testing.T) {
	s := e2e.Start(t, e2e.Options{Config: logsHeader + `
[app.big]
allow_root = true
kind = "process"
command = ["/bin/sh", "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 0.02; if [ -e @DIR@/go ]; then rm @DIR@/go; head -c 2097152 /dev/zero | tr '\\0' x; echo; echo after-long; fi; done"]
log = "file"
log_file = "@DIR@/big.log"
`})
	path := filepath.Join(s.Dir, "big.log")
	read := func() string {
		b, err := os.ReadFile(path)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return string(b)
	}
	testenv.WaitFor(t, 30*time.Second, "100 ticks in the log file", func() bool { return lastNumber(read(), "tick") >= 100 })
	if err := exec.Command("/bin/cp", path, path+".1").Run(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "ticks after the truncation", func() bool { return strings.Count(read(), "tick") >= 20 })
	if err := os.WriteFile(filepath.Join(s.Dir, "go"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 60*time.Second, "the line after the long one", func() bool { return strings.Contains(read(), "big[1] stdout: after-long") })
	text := read()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	t.Logf("after copytruncate: %d bytes, %d allocated, %d NUL bytes", st.Size, st.Blocks*512, strings.Count(text, "\x00"))
	if n := strings.Count(text, "\x00"); n > 0 || st.Blocks*512 < st.Size-4096 {
		t.Fatalf("the file has a hole: %d NUL bytes, %d of %d bytes allocated", n, st.Blocks*512, st.Size)
	}
	pieces := 0
	for _, l := range strings.Split(strings.TrimSuffix(text, "\n"), "\n") {
		_, rest, ok := strings.Cut(l, " big[1] stdout")
		if !ok {
			t.Fatalf("line %.80q is not whole", l)
		}
		if strings.HasPrefix(rest, " (split ") {
			_, piece, _ := strings.Cut(rest, "): ")
			if len(piece) != 64<<10 || strings.Trim(piece, "x") != "" {
				t.Fatalf("piece %.30q... has %d bytes, want 65536 x", rest, len(piece))
			}
			pieces++
		}
	}
	dropped := s.App("big").LogDropped
	t.Logf("2 MiB line: %d pieces in the file, %d lines dropped", pieces, dropped)
	if pieces != 32 || dropped != 0 {
		t.Fatalf("%d pieces of the 2 MiB line in the file (want 32), %d lines dropped", pieces, dropped)
	}
}
