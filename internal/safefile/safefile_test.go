package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// nobody is the uid the tests give to files an unprivileged user planted.
const nobody = 65534

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: files are owned by another user")
	}
}

func write(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// Each case lays out dir/ (root-owned, 0755) and opens dir/open for
// appending; target is a root-only file outside the user's reach whose
// bytes must stay as they were.
func TestOpenRefusesPlantedLinks(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name   string
		setup  func(t *testing.T, dir, target string)
		open   string // relative to dir
		refuse string // "" when the open must succeed
	}{
		{"plain file created", func(t *testing.T, dir, target string) {}, "app.log", ""},
		{"symlink final component", func(t *testing.T, dir, target string) {
			must(t, os.Symlink(target, filepath.Join(dir, "app.log")))
		}, "app.log", "app.log is a symbolic link"},
		{"dangling symlink final component", func(t *testing.T, dir, target string) {
			must(t, os.Symlink(filepath.Join(filepath.Dir(target), "new"), filepath.Join(dir, "app.log")))
		}, "app.log", "app.log is a symbolic link"},
		{"symlinked parent owned by the user", func(t *testing.T, dir, target string) {
			link := filepath.Join(dir, "logs")
			must(t, os.Symlink(filepath.Dir(target), link))
			must(t, os.Lchown(link, nobody, nobody))
		}, "logs/secret", "logs is a symbolic link that a user other than root could have made"},
		{"root symlink in a user's directory", func(t *testing.T, dir, target string) {
			must(t, os.Mkdir(filepath.Join(dir, "user"), 0o755))
			must(t, os.Chown(filepath.Join(dir, "user"), nobody, nobody))
			must(t, os.Symlink(filepath.Dir(target), filepath.Join(dir, "user", "logs")))
		}, "user/logs/secret", "logs is a symbolic link that a user other than root could have made"},
		{"hard link", func(t *testing.T, dir, target string) {
			must(t, os.Link(target, filepath.Join(dir, "app.log")))
		}, "app.log", "app.log has 2 hard links"},
		{"fifo", func(t *testing.T, dir, target string) {
			must(t, unix.Mkfifo(filepath.Join(dir, "app.log"), 0o666))
		}, "app.log", "app.log is a FIFO or socket"},
		{"directory", func(t *testing.T, dir, target string) {
			must(t, os.Mkdir(filepath.Join(dir, "app.log"), 0o755))
		}, "app.log", "app.log is a directory"},
		{"trusted root symlink to a directory", func(t *testing.T, dir, target string) {
			must(t, os.Mkdir(filepath.Join(dir, "real"), 0o755))
			must(t, os.Symlink("real", filepath.Join(dir, "run")))
		}, "run/app.log", ""},
		{"trusted absolute root symlink", func(t *testing.T, dir, target string) {
			must(t, os.Mkdir(filepath.Join(dir, "real"), 0o755))
			must(t, os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "run")))
		}, "run/app.log", ""},
		{"root symlink in a group-writable directory", func(t *testing.T, dir, target string) {
			must(t, os.Mkdir(filepath.Join(dir, "shared"), 0o775))
			must(t, os.Chmod(filepath.Join(dir, "shared"), 0o775))
			must(t, os.Mkdir(filepath.Join(dir, "real"), 0o755))
			must(t, os.Symlink(filepath.Join(dir, "real"), filepath.Join(dir, "shared", "run")))
		}, "shared/run/app.log", "run is a symbolic link that a user other than root could have made"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := t.TempDir()
			must(t, os.Chmod(root, 0o755))
			dir := filepath.Join(root, "dir")
			must(t, os.Mkdir(dir, 0o755))
			secrets := filepath.Join(root, "secrets")
			must(t, os.Mkdir(secrets, 0o700))
			target := filepath.Join(secrets, "secret")
			write(t, target, "ROOT_SECRET=hunter2\n", 0o600)
			c.setup(t, dir, target)
			path := filepath.Join(dir, c.open)
			f, err := Open(path, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT, 0o600, false, nil)
			if c.refuse == "" {
				must(t, err)
				_, err = f.WriteString("line\n")
				must(t, err)
				must(t, f.Close())
			} else {
				if err == nil {
					_ = f.Close() // the test fails: nothing to keep
					t.Fatalf("open %s: no error, want %q", path, c.refuse)
				}
				if !strings.Contains(err.Error(), c.refuse) || !strings.HasPrefix(err.Error(), path+": ") {
					t.Fatalf("error %q, want it to start with %q and contain %q", err, path, c.refuse)
				}
				t.Logf("refused: %v", err)
			}
			got, err := os.ReadFile(target)
			must(t, err)
			if string(got) != "ROOT_SECRET=hunter2\n" {
				t.Fatalf("target changed: %q", got)
			}
			if _, err := os.Stat(filepath.Join(secrets, "new")); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("a file was created outside the directory: %v", err)
			}
		})
	}
}

// A Check sees the opened descriptor, and its reason names the path.
func TestOpenCheck(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "env")
	write(t, path, "A=1\n", 0o600)
	_, err := Open(path, unix.O_RDONLY, 0, false, func(st *unix.Stat_t) string { return "not today: refused" })
	if err == nil || err.Error() != path+": not today: refused" || !errors.Is(err, ErrRefused) {
		t.Fatalf("err %v", err)
	}
	f, err := Open(path, unix.O_RDONLY, 0, false, func(st *unix.Stat_t) string { return "" })
	must(t, err)
	must(t, f.Close())
	if _, err := Open(filepath.Join(dir, "missing"), unix.O_RDONLY, 0, false, nil); !errors.Is(err, os.ErrNotExist) || errors.Is(err, ErrRefused) {
		t.Fatalf("missing file: %v", err)
	}
}

// OpenDir with create makes the missing directories, and Lstat reports a
// final link without following it.
func TestOpenDirCreateAndLstat(t *testing.T) {
	dir := t.TempDir()
	d, err := OpenDir(filepath.Join(dir, "a", "b"), true)
	must(t, err)
	must(t, d.Close())
	if fi, err := os.Stat(filepath.Join(dir, "a", "b")); err != nil || !fi.IsDir() {
		t.Fatalf("a/b not made: %v", err)
	}
	must(t, os.Symlink("/etc/passwd", filepath.Join(dir, "a", "l")))
	st, err := Lstat(filepath.Join(dir, "a", "l"))
	must(t, err)
	if st.Mode&unix.S_IFMT != unix.S_IFLNK {
		t.Fatalf("mode %o, want a link", st.Mode)
	}
	if _, err := OpenDir("relative/dir", false); err == nil {
		t.Fatal("relative path accepted")
	}
}

// OpenRead follows a final symbolic link only where root made it in a
// directory only root can write (a Kubernetes ConfigMap's chain of links),
// and refuses one the app's user could have made.
func TestOpenReadFinalLinks(t *testing.T) {
	requireRoot(t)
	cases := []struct {
		name   string
		setup  func(t *testing.T, dir string) string // returns the path to open
		refuse string
	}{
		{"configmap chain", func(t *testing.T, dir string) string {
			must(t, os.Mkdir(filepath.Join(dir, "..2026_12_07"), 0o755))
			write(t, filepath.Join(dir, "..2026_12_07", "app.env"), "A=1\n", 0o600)
			must(t, os.Symlink("..2026_12_07", filepath.Join(dir, "..data")))
			must(t, os.Symlink("..data/app.env", filepath.Join(dir, "app.env")))
			return filepath.Join(dir, "app.env")
		}, ""},
		{"absolute root link", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "real.env"), "A=1\n", 0o600)
			must(t, os.Symlink(filepath.Join(dir, "real.env"), filepath.Join(dir, "app.env")))
			return filepath.Join(dir, "app.env")
		}, ""},
		{"link made by the user", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "real.env"), "A=1\n", 0o600)
			must(t, os.Symlink("real.env", filepath.Join(dir, "app.env")))
			must(t, os.Lchown(filepath.Join(dir, "app.env"), nobody, nobody))
			return filepath.Join(dir, "app.env")
		}, "app.env is a symbolic link that a user other than root could have made"},
		{"root link in the user's directory", func(t *testing.T, dir string) string {
			write(t, filepath.Join(dir, "real.env"), "A=1\n", 0o600)
			must(t, os.Mkdir(filepath.Join(dir, "user"), 0o755))
			must(t, os.Chown(filepath.Join(dir, "user"), nobody, nobody))
			must(t, os.Symlink(filepath.Join(dir, "real.env"), filepath.Join(dir, "user", "app.env")))
			return filepath.Join(dir, "user", "app.env")
		}, "app.env is a symbolic link that a user other than root could have made"},
		{"loop", func(t *testing.T, dir string) string {
			must(t, os.Symlink("b", filepath.Join(dir, "a")))
			must(t, os.Symlink("a", filepath.Join(dir, "b")))
			return filepath.Join(dir, "a")
		}, "more than 40 symbolic links"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			must(t, os.Chmod(dir, 0o755))
			path := c.setup(t, dir)
			f, err := OpenRead(path, nil)
			if c.refuse == "" {
				must(t, err)
				b := make([]byte, 16)
				n, err := f.Read(b)
				must(t, err)
				must(t, f.Close())
				if string(b[:n]) != "A=1\n" {
					t.Fatalf("read %q", b[:n])
				}
				return
			}
			if err == nil || !strings.HasPrefix(err.Error(), path+": ") || !strings.Contains(err.Error(), c.refuse) {
				t.Fatalf("error %v, want one naming %s: %s", err, path, c.refuse)
			}
		})
	}
}
