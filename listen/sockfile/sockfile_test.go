package sockfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// The mode is set on the socket bound, never through a link put in its
// place between bind and chmod.
func TestChmodSocketRefusesLink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "web.sock")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	err := chmodSocket(link, 0o666)
	if err == nil || !strings.Contains(err.Error(), "no longer a socket") {
		t.Fatalf("chmod through a link: %v", err)
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("target mode changed: %v %v", fi.Mode(), err)
	}
	sock := filepath.Join(dir, "real.sock")
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unix.Close(fd) }() // test socket
	if err := Bind(fd, sock, 0o660, -1, -1); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, want 0660: %v", fi.Mode(), err)
	}
}
