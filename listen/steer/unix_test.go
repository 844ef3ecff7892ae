package steer

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestUnixReusePortRefused probes whether this kernel lets AF_UNIX sockets
// join a reuseport group; the package comment relies on the answer.
func TestUnixReusePortRefused(t *testing.T) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket(AF_UNIX): %v", err)
	}
	defer unix.Close(fd)
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
	t.Logf("kernel %s: setsockopt(AF_UNIX, SO_REUSEPORT) = %v", kernelRelease(), err)
	if err == nil {
		t.Logf("kernel %s accepts the option on AF_UNIX (older kernels ignore it there); SwitchUnix does not depend on it", kernelRelease())
		return
	}
	if !errors.Is(err, unix.EOPNOTSUPP) {
		t.Fatalf("setsockopt(AF_UNIX, SO_REUSEPORT) = %v, want EOPNOTSUPP", err)
	}
}

// listenUnix listens on path; the listener is closed at cleanup.
func listenUnix(t *testing.T, path string) *net.UnixListener {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatalf("listen %s: %v", path, err)
	}
	t.Cleanup(func() { _ = l.Close() }) // a test may have closed it already
	return l
}

// acceptUnix accepts one connection from l within ioTimeout.
func acceptUnix(t *testing.T, l *net.UnixListener) *net.UnixConn {
	t.Helper()
	_ = l.SetDeadline(time.Now().Add(ioTimeout)) // a failed set shows as an accept error below
	c, err := l.AcceptUnix()
	if err != nil {
		t.Fatalf("accept on %s: %v", l.Addr(), err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestSwitchUnixMovesNewConnections(t *testing.T) {
	dir := t.TempDir()
	public := filepath.Join(dir, "web.sock")
	g1 := listenUnix(t, filepath.Join(dir, ".web.sock.g1"))
	g2 := listenUnix(t, filepath.Join(dir, ".web.sock.g2"))
	if err := SwitchUnix(g1.Addr().String(), public); err != nil {
		t.Fatal(err)
	}
	queued, err := net.DialTimeout("unix", public, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", public, err)
	}
	defer queued.Close()
	if err := SwitchUnix(g2.Addr().String(), public); err != nil {
		t.Fatal(err)
	}
	fresh, err := net.DialTimeout("unix", public, ioTimeout)
	if err != nil {
		t.Fatalf("dial %s: %v", public, err)
	}
	defer fresh.Close()
	acceptUnix(t, g1) // the connection made before the switch stays queued on g1
	acceptUnix(t, g2)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 3 {
		t.Fatalf("directory holds %d entries, want the two generation sockets and %s", len(entries), public)
	}
}

// TestSwitchUnixUnderConnectLoop switches the public path back and forth
// while clients connect in a loop: no connect may fail.
func TestSwitchUnixUnderConnectLoop(t *testing.T) {
	dir := t.TempDir()
	public := filepath.Join(dir, "web.sock")
	gens := []*net.UnixListener{
		listenUnix(t, filepath.Join(dir, ".web.sock.g1")),
		listenUnix(t, filepath.Join(dir, ".web.sock.g2")),
	}
	if err := SwitchUnix(gens[0].Addr().String(), public); err != nil {
		t.Fatal(err)
	}
	var acceptors sync.WaitGroup
	for _, l := range gens {
		acceptors.Add(1)
		go func() {
			defer acceptors.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					return // the listener was closed at the end of the test
				}
				_ = c.Close() // the client only needs the connection established
			}
		}()
	}
	const clients, perClient = 4, 250
	errs := make(chan error, clients*perClient)
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range perClient {
				c, err := net.DialTimeout("unix", public, ioTimeout)
				if err == nil {
					err = c.Close()
				}
				errs <- err
			}
		}()
	}
	switches := 0
	for i := range clients * perClient {
		if err := <-errs; err != nil {
			t.Errorf("connect %d: %v", i, err)
		}
		if i%10 == 0 {
			if err := SwitchUnix(gens[switches%2].Addr().String(), public); err != nil {
				t.Fatal(err)
			}
			switches++
		}
	}
	wg.Wait()
	for _, l := range gens {
		_ = l.Close() // stops its acceptor
	}
	acceptors.Wait()
	t.Logf("%d connects, %d switches, none failed", clients*perClient, switches)
}
