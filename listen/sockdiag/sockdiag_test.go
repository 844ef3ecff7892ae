package sockdiag

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUnixQueueLength: connections nobody accepted are counted on their
// listener, looked up by its SocketInode; an unknown inode counts 0, and a
// descriptor that is not a socket has no SocketInode.
func TestUnixQueueLength(t *testing.T) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for range 2 {
		c, err := net.DialTimeout("unix", l.Addr().String(), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	f, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ino, err := SocketInode(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := UnixQueueLength(ino); err != nil || n != 2 {
		t.Errorf("UnixQueueLength = %d, %v; want 2", n, err)
	}
	if n, err := UnixQueueLength(1); err != nil || n != 0 {
		t.Errorf("UnixQueueLength(unknown) = %d, %v; want 0", n, err)
	}
	file, err := os.Create(filepath.Join(t.TempDir(), "file"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := SocketInode(int(file.Fd())); !errors.Is(err, unix.ENOTSOCK) {
		t.Errorf("SocketInode(regular file) = %v, want ENOTSOCK", err)
	}
}
