package logs

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// rootOnly writes a root-only file outside dir and returns its path.
func rootOnly(t *testing.T) string {
	t.Helper()
	secrets := filepath.Join(t.TempDir(), "secrets")
	if err := os.Mkdir(secrets, 0o700); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(secrets, "target")
	if err := os.WriteFile(target, []byte("root data\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return target
}

// A log file that is a planted link (symbolic or hard), or lies under a
// symbolic link a user made, is refused when the sink opens it, after a
// reopen, and when a rotation finds it in place of the file; the target's
// bytes stay as they were.
func TestFileSinkRefusesPlantedLinks(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: a link owned by another user")
	}
	cases := []struct {
		name  string
		plant func(t *testing.T, dir, target string) string // returns the log path
		want  string
	}{
		{"symlink", func(t *testing.T, dir, target string) string {
			p := filepath.Join(dir, "app.log")
			mustDo(t, os.Symlink(target, p))
			return p
		}, "app.log is a symbolic link: refused"},
		{"hard link", func(t *testing.T, dir, target string) string {
			p := filepath.Join(dir, "app.log")
			mustDo(t, os.Link(target, p))
			return p
		}, "app.log has 2 hard links: refused"},
		{"symlinked parent", func(t *testing.T, dir, target string) string {
			l := filepath.Join(dir, "sub")
			mustDo(t, os.Symlink(filepath.Dir(target), l))
			mustDo(t, os.Lchown(l, 65534, 65534))
			return filepath.Join(l, "target")
		}, "sub is a symbolic link that a user other than root could have made"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			target := rootOnly(t)
			dir := t.TempDir()
			path := c.plant(t, dir, target)
			_, err := NewFileSink(FileOptions{Path: path, UID: 65534})
			if err == nil || !strings.Contains(err.Error(), path+": ") || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one naming %s: %s", err, path, c.want)
			}
			t.Logf("refused: %v", err)
			checkUnchanged(t, target)
		})
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func checkUnchanged(t *testing.T, target string) {
	t.Helper()
	b, err := os.ReadFile(target)
	mustDo(t, err)
	if string(b) != "root data\n" {
		t.Fatalf("%s changed: %q", target, b)
	}
}

// A link planted while the sink runs is refused at the reopen and at the
// next rotation; the file in use is renamed only while it is still the one
// under the name.
func TestFileSinkLinkPlantedLater(t *testing.T) {
	target := rootOnly(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	fs, err := NewFileSink(FileOptions{Path: path, MaxSizeMB: 1, MaxFiles: 2})
	mustDo(t, err)
	line := bytes.Repeat([]byte("x"), 1023)
	line = append(line, '\n')
	_, err = fs.Write(line)
	mustDo(t, err)
	// The user moves the file away and plants a link: the open file is
	// written on, the next rotation does not rename the link and refuses
	// to create the next file through it.
	mustDo(t, os.Rename(path, path+".moved"))
	mustDo(t, os.Symlink(target, path))
	for i := 0; i < 1022; i++ {
		_, err = fs.Write(line)
		mustDo(t, err)
	}
	_, err = fs.Write(line)
	if err == nil || !strings.Contains(err.Error(), "app.log is a symbolic link: refused") {
		t.Fatalf("rotation through a planted link: %v", err)
	}
	if err := fs.Reopen(); err == nil || !strings.Contains(err.Error(), path+": app.log is a symbolic link: refused") {
		t.Fatalf("reopen through a planted link: %v", err)
	}
	if _, err := fs.Write(line); err == nil || !strings.Contains(err.Error(), path+": app.log is a symbolic link: refused") {
		t.Fatalf("write after the refused reopen: %v", err)
	}
	mustDo(t, fs.Close())
	checkUnchanged(t, target)
	if fi, err := os.Lstat(path); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Fatalf("the planted link was moved: %v", err)
	}
}

// After a copytruncate (copy, then truncate to 0) the sink's next lines go
// to the start of the file: no hole of NUL bytes in front of them.
func TestFileSinkCopytruncate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	fs, err := NewFileSink(FileOptions{Path: path, MaxSizeMB: 1})
	mustDo(t, err)
	before := bytes.Repeat([]byte("before 0123456789\n"), 10000)
	_, err = fs.Write(before)
	mustDo(t, err)
	mustDo(t, os.Truncate(path, 0))
	_, err = fs.Write([]byte("after\n"))
	mustDo(t, err)
	mustDo(t, fs.Close())
	b, err := os.ReadFile(path)
	mustDo(t, err)
	if string(b) != "after\n" {
		t.Fatalf("after copytruncate the file holds %d bytes (%d NUL), want %q", len(b), bytes.Count(b, []byte{0}), "after\n")
	}
	var st unix.Stat_t
	mustDo(t, unix.Stat(path, &st))
	if st.Blocks*512 > 8192 {
		t.Fatalf("file uses %d blocks for %d bytes", st.Blocks, st.Size)
	}
}

// Rotated files are named NAME-TIME.EXT as before (so existing rotated
// files are counted against log_max_files), with the mode and owner of the
// file they were; the next file gets the same.
func TestFileSinkRotatedNamesAndOwner(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "app.log")
	old := filepath.Join(dir, "app-2020-01-02T03-04-05.000.log")
	mustDo(t, os.WriteFile(old, []byte("old\n"), 0o600))
	mustDo(t, os.WriteFile(path, nil, 0o640))
	mustDo(t, os.Chmod(path, 0o640))
	fs, err := NewFileSink(FileOptions{Path: path, MaxSizeMB: 1, MaxFiles: 1})
	mustDo(t, err)
	big := bytes.Repeat([]byte("y"), 600<<10)
	for i := 0; i < 2; i++ {
		_, err = fs.Write(append(big, '\n'))
		mustDo(t, err)
	}
	mustDo(t, fs.Close())
	waitFor(t, "the oldest rotated file removed", func() bool {
		_, err := os.Stat(old)
		return os.IsNotExist(err)
	})
	files := logFiles(t, dir)
	if len(files) != 2 {
		t.Fatalf("files %v, want one rotated file and app.log", files)
	}
	if _, ok := backupOf("app.log", filepath.Base(files[0])); !ok {
		t.Fatalf("rotated file %s not named NAME-TIME.EXT", files[0])
	}
	for _, f := range files {
		fi, err := os.Stat(f)
		mustDo(t, err)
		if fi.Mode().Perm() != 0o640 {
			t.Fatalf("%s mode %v, want 0640", f, fi.Mode().Perm())
		}
	}
}
