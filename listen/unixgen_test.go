package listen

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// acceptOne accepts one connection on the listening descriptor fd within
// five seconds, or fails the test.
func acceptOne(t *testing.T, fd int) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	if n, err := unix.Poll(pfd, 5000); err != nil || n != 1 {
		t.Fatalf("poll fd %d: %d, %v: no connection waiting", fd, n, err)
	}
	c, _, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatalf("accept on fd %d: %v", fd, err)
	}
	unix.Close(c)
}

// hiddenNames lists the hidden names in dir.
func hiddenNames(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	return out
}

// steeredUnix binds web.sock in a new directory and steers it; the
// UnixGens closes when t ends.
func steeredUnix(t *testing.T) (dir, public string, held *Socket, u *UnixGens) {
	t.Helper()
	dir = t.TempDir()
	public = filepath.Join(dir, "web.sock")
	held, err := Bind(testUnixListener(public, 0o660, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if u, err = SteerUnix(held); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = u.Close() }) // the tests check closing themselves; Close is safe twice
	return dir, public, held, u
}

// TestUnixGensSwitch: a start shares the held socket; a reload's
// generation gets its own socket at a hidden name, reachable by path only
// after Serve; a connection queued on the old socket before the switch
// stays there; the old socket closes once its generation is released,
// removing its hidden name; a later start shares the serving socket.
func TestUnixGensSwitch(t *testing.T) {
	dir, public, held, u := steeredUnix(t)
	s1, err := u.Add(1, true) // nothing runs: it shares the held socket
	if err != nil || s1 != held {
		t.Fatalf("Add(1) = %v, %v; want the held socket", s1, err)
	}
	s2, err := u.Add(2, true)
	if err != nil || s2 == held {
		t.Fatalf("Add(2) = %v, %v; want a socket of its own", s2, err)
	}
	queued, err := net.DialTimeout("unix", public, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer queued.Close()
	if n, err := u.QueueDepth(1); err != nil || n != 1 {
		t.Errorf("QueueDepth(1) = %d, %v; want 1", n, err)
	}
	if now, err := u.Serve(2); err != nil || now != s2 {
		t.Fatalf("Serve(2) = %v, %v", now, err)
	}
	if !u.Serving(2) || u.Serving(1) {
		t.Errorf("Serving: 1 %v, 2 %v", u.Serving(1), u.Serving(2))
	}
	fresh, err := net.DialTimeout("unix", public, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	acceptOne(t, held.FD()) // queued before the switch: still on the old socket
	acceptOne(t, s2.FD())
	if err := held.Relink(); err != nil {
		t.Errorf("Relink of the unpublished socket: %v", err)
	}
	if err := u.Release(1); err != nil {
		t.Fatal(err)
	}
	if held.FD() != -1 {
		t.Error("the released old socket is still open")
	}
	_, hold := s2.Held()
	if names := hiddenNames(t, dir); len(names) != 1 || names[0] != filepath.Base(hold) {
		t.Errorf("hidden names %v, want only %s", names, filepath.Base(hold))
	}
	if testInode(t, public) != testInode(t, hold) {
		t.Errorf("%s does not name generation 2's socket", public)
	}
	s3, err := u.Add(3, false)
	if err != nil || s3 != s2 {
		t.Errorf("Add(3) for a start = %v, %v; want the serving socket", s3, err)
	}
}

// TestUnixGensReleaseKeepsServing: the serving socket outlives its
// generations (its queue waits for the next one), and a generation that
// follows re-creates the hidden name its master removed; an own socket
// that never served goes with its generation.
func TestUnixGensReleaseKeepsServing(t *testing.T) {
	_, public, held, u := steeredUnix(t)
	if _, err := u.Add(1, false); err != nil {
		t.Fatal(err)
	}
	s2, err := u.Add(2, true)
	if err != nil {
		t.Fatal(err)
	}
	_, hold2 := s2.Held()
	if err := u.Release(2); err != nil { // a rolled-back generation
		t.Fatal(err)
	}
	if _, err := os.Lstat(hold2); !os.IsNotExist(err) {
		t.Errorf("%s still there after its generation was released: %v", hold2, err)
	}
	_, hold := held.Held()
	if err := os.Remove(hold); err != nil { // as a Gunicorn master does on exit
		t.Fatal(err)
	}
	if err := u.Release(1); err != nil {
		t.Fatal(err)
	}
	if held.FD() < 0 || testDialOK(public) != nil {
		t.Fatal("the serving socket closed with its last generation")
	}
	if s, err := u.Add(3, true); err != nil || s != held {
		t.Fatalf("Add(3) after every generation exited = %v, %v; want the serving socket", s, err)
	}
	if testInode(t, hold) != testInode(t, public) {
		t.Errorf("hidden name %s not re-created", hold)
	}
}

// TestUnixGensServeBack: a rollback within keep_previous serves the
// previous generation's socket again (its hidden name renamed back over
// the path) while that generation runs; new clients reach it, and the
// newer socket closes with its generation.
func TestUnixGensServeBack(t *testing.T) {
	_, public, held, u := steeredUnix(t)
	if _, err := u.Add(1, true); err != nil {
		t.Fatal(err)
	}
	s2, err := u.Add(2, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := u.Serve(2); err != nil {
		t.Fatal(err)
	}
	if now, err := u.Serve(1); err != nil || now != held {
		t.Fatalf("Serve(1) back = %v, %v; want the held socket", now, err)
	}
	_, hold := held.Held()
	if !u.Serving(1) || testInode(t, public) != testInode(t, hold) {
		t.Fatalf("after serving back: Serving(1) %v; %s names the held socket: %v", u.Serving(1), public, testInode(t, public) == testInode(t, hold))
	}
	c, err := net.DialTimeout("unix", public, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	acceptOne(t, held.FD())
	if err := u.Release(2); err != nil {
		t.Fatal(err)
	}
	if s2.FD() != -1 {
		t.Error("the newer generation's socket is still open after its release")
	}
}
