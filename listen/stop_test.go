package listen

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeMaster does what a Gunicorn master does with an inherited Unix socket
// when told to stop: it closes its copy and unlinks the name the socket
// reports (getsockname), failing if that name is gone, as Gunicorn's
// close_sockets does. Its result arrives on done.
type fakeMaster struct {
	fd   int
	stop chan struct{}
	done chan error
}

func startFakeMaster(t *testing.T, s *Socket) *fakeMaster {
	t.Helper()
	fd, err := unix.Dup(s.FD())
	if err != nil {
		t.Fatal(err)
	}
	m := &fakeMaster{fd: fd, stop: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		<-m.stop
		sa, err := unix.Getsockname(m.fd)
		if err != nil {
			m.done <- err
			return
		}
		_ = unix.Close(m.fd) // our duplicate
		m.done <- os.Remove(sa.(*unix.SockaddrUnix).Name)
	}()
	return m
}

// TestSignalStopTwoMastersAtOnce: two masters sharing one held Unix socket
// are stopped at the same instant (a stop during a reload). Each must find
// the hidden name it unlinks, and the configured path must still reach the
// socket afterwards. Without SignalStop's turn the second unlink fails with
// ENOENT (Gunicorn's FileNotFoundError, exit 1).
func TestSignalStopTwoMastersAtOnce(t *testing.T) {
	for round := 0; round < 20; round++ {
		path := filepath.Join(t.TempDir(), "web.sock")
		s, err := Bind(testUnixListener(path, 0o660, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		masters := []*fakeMaster{startFakeMaster(t, s), startFakeMaster(t, s)}
		var wg sync.WaitGroup
		errs := make([]error, len(masters))
		for i, m := range masters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				exited := make(chan struct{})
				errs[i] = SignalStop([]*Socket{s}, func() error { close(m.stop); return nil }, exited, 5*time.Second)
			}()
		}
		wg.Wait()
		for i, m := range masters {
			if errs[i] != nil {
				t.Errorf("round %d: SignalStop %d: %v", round, i, errs[i])
			}
			if err := <-m.done; err != nil {
				t.Errorf("round %d: master %d: %v (Gunicorn would exit 1 here)", round, i, err)
			}
		}
		if err := testDialOK(path); err != nil {
			t.Errorf("round %d: %s no longer reaches the socket: %v", round, path, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestShutKeepsNamesForStoppingMasters: at shutdown the supervisor closes its
// descriptor first (Shut); a master stopping afterwards must still find its
// name, and Close then removes both names.
func TestShutKeepsNamesForStoppingMasters(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "web.sock")
	s, err := Bind(testUnixListener(path, 0o660, "", ""))
	if err != nil {
		t.Fatal(err)
	}
	m := startFakeMaster(t, s)
	if err := s.Shut(); err != nil {
		t.Fatalf("Shut: %v", err)
	}
	if s.FD() != -1 {
		t.Errorf("FD after Shut = %d, want -1", s.FD())
	}
	if err := SignalStop([]*Socket{s}, func() error { close(m.stop); return nil }, nil, 5*time.Second); err != nil {
		t.Errorf("SignalStop after Shut: %v", err)
	}
	if err := <-m.done; err != nil {
		t.Errorf("master stopping after Shut: %v (Gunicorn would exit 1 here)", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left behind after Close: %s", e.Name())
	}
	if err := s.Relink(); err != nil {
		t.Errorf("Relink after Close: %v, want nil", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Relink after Close re-created %s", path)
	}
}
