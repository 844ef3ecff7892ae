package listen

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
)

// testUnixListener is a unix:// listener of path with the given socket_mode, socket_owner and socket_group.
func testUnixListener(path string, mode os.FileMode, owner, group string) config.Listener {
	return config.Listener{Raw: "unix://" + path, Network: config.NetUnix, Address: path, Mode: mode, Owner: owner, Group: group}
}

// testInode returns the inode of path (not following a symlink), or 0.
func testInode(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return 0
	}
	return st.Ino
}

// testDialOK reports whether a connection to the Unix socket path completes (a
// listening socket completes it from its backlog, accepted or not).
func testDialOK(path string) error {
	c, err := net.Dial("unix", path)
	if err != nil {
		return err
	}
	return c.Close()
}

// TestBindUnixExistingPath: a stale socket file is replaced, anything else at
// the path is refused and left as it was.
func TestBindUnixExistingPath(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(t *testing.T, path string) (check func(t *testing.T))
		wantErr string
	}{
		{name: "nothing there"},
		{
			name: "stale socket of a closed listener",
			prepare: func(t *testing.T, path string) func(*testing.T) {
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				l.SetUnlinkOnClose(false)
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				if err := testDialOK(path); !errors.Is(err, unix.ECONNREFUSED) {
					t.Fatalf("dial of the stale socket: %v, want ECONNREFUSED", err)
				}
				// Inode numbers are reused at once, so "replaced" is shown by
				// the dial that succeeds after Bind, not by a new inode.
				return func(*testing.T) {}
			},
		},
		{
			name: "live socket",
			prepare: func(t *testing.T, path string) func(*testing.T) {
				l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { l.Close() })
				old := testInode(t, path)
				return func(t *testing.T) {
					if testInode(t, path) != old {
						t.Errorf("the live socket's path was replaced")
					}
					if err := testDialOK(path); err != nil {
						t.Errorf("the live socket no longer answers: %v", err)
					}
				}
			},
			wantErr: "in use",
		},
		{
			name: "regular file",
			prepare: func(t *testing.T, path string) func(*testing.T) {
				if err := os.WriteFile(path, []byte("keep me"), 0o644); err != nil {
					t.Fatal(err)
				}
				return func(t *testing.T) {
					if b, err := os.ReadFile(path); err != nil || string(b) != "keep me" {
						t.Errorf("regular file changed: %q, %v", b, err)
					}
				}
			},
			wantErr: "not a socket",
		},
		{
			name: "directory",
			prepare: func(t *testing.T, path string) func(*testing.T) {
				if err := os.Mkdir(path, 0o755); err != nil {
					t.Fatal(err)
				}
				return func(t *testing.T) {
					if st, err := os.Stat(path); err != nil || !st.IsDir() {
						t.Errorf("directory gone: %v", err)
					}
				}
			},
			wantErr: "not a socket",
		},
		{
			name: "symlink",
			prepare: func(t *testing.T, path string) func(*testing.T) {
				if err := os.Symlink("/dev/null", path); err != nil {
					t.Fatal(err)
				}
				return func(t *testing.T) {
					if target, err := os.Readlink(path); err != nil || target != "/dev/null" {
						t.Errorf("symlink changed: %q, %v", target, err)
					}
				}
			},
			wantErr: "not a socket",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "web.sock")
			check := func(*testing.T) {}
			if tt.prepare != nil {
				check = tt.prepare(t, path)
			}
			s, err := Bind(testUnixListener(path, 0o660, "", ""))
			if tt.wantErr != "" {
				if err == nil {
					_ = s.Close() // failing anyway
					t.Fatalf("Bind succeeded, want an error containing %q", tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), path) {
					t.Errorf("error %q should contain %q and name %s", err, tt.wantErr, path)
				}
				check(t)
				return
			}
			if err != nil {
				t.Fatalf("Bind: %v", err)
			}
			defer s.Close()
			check(t)
			if s.Bound != path {
				t.Errorf("Bound = %q, want %q", s.Bound, path)
			}
			if err := testDialOK(path); err != nil {
				t.Errorf("the new socket does not answer at %s: %v", path, err)
			}
			if testInode(t, path) == 0 {
				t.Errorf("%s missing after Bind", path)
			}
		})
	}
}

// TestBindUnixModeOwner: socket_mode, socket_owner and socket_group apply to
// the path clients connect to.
func TestBindUnixModeOwner(t *testing.T) {
	tests := []struct {
		name         string
		mode         os.FileMode
		owner, group string
		uid, gid     int // -1: the supervisor's own
		needRoot     bool
	}{
		{name: "default mode", mode: 0, uid: -1, gid: -1},
		{name: "0600", mode: 0o600, uid: -1, gid: -1},
		{name: "0666", mode: 0o666, uid: -1, gid: -1},
		{name: "numeric owner", mode: 0o640, owner: "65534", group: "65534", uid: 65534, gid: 65534, needRoot: true},
		{name: "named owner", mode: 0o660, owner: "nobody", group: "nogroup", uid: 65534, gid: 65534, needRoot: true},
		{name: "group only", mode: 0o660, group: "nogroup", uid: -1, gid: 65534, needRoot: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.needRoot && os.Geteuid() != 0 {
				t.Skip("chown needs root")
			}
			path := filepath.Join(t.TempDir(), "web.sock")
			l := testUnixListener(path, tt.mode, tt.owner, tt.group)
			l.OwnerUID, l.GroupGID = tt.uid, tt.gid // config resolves them at load
			s, err := Bind(l)
			if err != nil {
				t.Fatalf("Bind: %v", err)
			}
			defer s.Close()
			var st unix.Stat_t
			if err := unix.Lstat(path, &st); err != nil {
				t.Fatal(err)
			}
			want := tt.mode
			if want == 0 {
				want = config.DefaultSocketMode
			}
			uid, gid := tt.uid, tt.gid
			if uid < 0 {
				uid = os.Geteuid()
			}
			if gid < 0 {
				gid = os.Getegid()
			}
			if got := os.FileMode(st.Mode).Perm(); got != want.Perm() || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
				t.Errorf("mode %o (type %o), want socket %o", got, st.Mode&unix.S_IFMT, want.Perm())
			}
			if int(st.Uid) != uid || int(st.Gid) != gid {
				t.Errorf("owner %d:%d, want %d:%d", st.Uid, st.Gid, uid, gid)
			}
			t.Logf("%s: mode %o owner %d:%d", path, os.FileMode(st.Mode).Perm(), st.Uid, st.Gid)
		})
	}
}

// TestSocketCloseRemovesOnlyItsOwnPath: Close unlinks the path while it names
// this socket, and leaves a path that now names something else.
func TestSocketCloseRemovesOnlyItsOwnPath(t *testing.T) {
	t.Run("own", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "web.sock")
		s, err := Bind(testUnixListener(path, 0o660, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
		if s.FD() != -1 {
			t.Errorf("FD after Close = %d, want -1", s.FD())
		}
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			t.Errorf("left behind after Close: %s", e.Name())
		}
	})
	t.Run("replaced", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "web.sock")
		s, err := Bind(testUnixListener(path, 0o660, "", ""))
		if err != nil {
			t.Fatal(err)
		}
		other := filepath.Join(dir, "other")
		if err := os.WriteFile(other, []byte("new owner"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(other, path); err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if b, err := os.ReadFile(path); err != nil || string(b) != "new owner" {
			t.Errorf("Close removed or changed a path that no longer named its socket: %q, %v", b, err)
		}
	})
}

// TestBindTCP: the port is resolved, the descriptor is CLOEXEC and listening,
// and a second bind of the same port fails naming it.
func TestBindTCP(t *testing.T) {
	s, err := Bind(config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0", Backlog: 16})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	host, port, err := net.SplitHostPort(s.Bound)
	if err != nil || host != "127.0.0.1" || port == "0" {
		t.Fatalf("Bound = %q (%v), want 127.0.0.1 and a real port", s.Bound, err)
	}
	flags, err := unix.FcntlInt(uintptr(s.FD()), unix.F_GETFD, 0)
	if err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd flags %#x (%v): want FD_CLOEXEC", flags, err)
	}
	if acc, err := unix.GetsockoptInt(s.FD(), unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || acc != 1 {
		t.Errorf("SO_ACCEPTCONN = %d (%v), want 1", acc, err)
	}
	if s.Network() != "tcp" {
		t.Errorf("network %q, want tcp", s.Network())
	}
	c, err := net.Dial("tcp", s.Bound)
	if err != nil {
		t.Errorf("connect to %s: %v", s.Bound, err)
	} else {
		_ = c.Close() // a client conn; nothing to check
	}
	dup, err := Bind(config.Listener{Raw: "tcp://" + s.Bound, Network: config.NetTCP, Address: s.Bound})
	if err == nil {
		_ = dup.Close() // failing anyway
		t.Fatalf("second bind of %s succeeded", s.Bound)
	}
	if !errors.Is(err, unix.EADDRINUSE) || !strings.Contains(err.Error(), s.Bound) {
		t.Errorf("second bind error %q: want EADDRINUSE naming %s", err, s.Bound)
	}
}

// TestOpenAppNamesConfigPosition: a listener read from a file that cannot be
// bound fails with a *config.Error naming the file, line and key; the
// listeners opened before it are closed.
func TestOpenAppNamesConfigPosition(t *testing.T) {
	taken, err := Bind(config.Listener{Raw: "tcp://127.0.0.1:0", Network: config.NetTCP, Address: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	first := filepath.Join(dir, "web.sock")
	app := &config.App{Name: "web", Listen: []config.Listener{
		{Raw: "unix://" + first, Network: config.NetUnix, Address: first, File: "/etc/sup.toml", Line: 7, Key: "app.web.listen[0]"},
		{Raw: "tcp://localhost:" + taken.Bound[len("127.0.0.1:"):], Network: config.NetTCP, Address: "localhost:" + taken.Bound[len("127.0.0.1:"):],
			File: "/etc/sup.toml", Line: 7, Key: "app.web.listen[1]"},
	}}
	socks, err := OpenApp(app, nil)
	if err == nil {
		_ = CloseAll(socks) // failing anyway
		t.Fatalf("OpenApp bound %s twice", taken.Bound)
	}
	var ce *config.Error
	if !errors.As(err, &ce) || ce.File != "/etc/sup.toml" || ce.Line != 7 || ce.Key != "app.web.listen[1]" || !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("OpenApp error %q (%#v): want a *config.Error at /etc/sup.toml:7 app.web.listen[1] wrapping EADDRINUSE", err, ce)
	}
	if !strings.HasPrefix(err.Error(), "/etc/sup.toml:7: app.web.listen[1]: listen tcp://localhost:") {
		t.Errorf("OpenApp error %q: want it to start with FILE:LINE: KEY", err)
	}
	if _, err := os.Lstat(first); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the first listener's path %s is still there after the failure: %v", first, err)
	}
}
