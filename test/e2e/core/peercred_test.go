package core

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
)

var peerConfig = e2e.Config{Extra: "@GROUP@\n"}.String() + `
[app.idle]
allow_root = true
kind = "process"
command = ["/bin/sleep", "3600"]
`

// nobody is the unprivileged uid/gid the helper client runs as.
const nobody = 65534

// helperBinary copies the test binary to dir (made traversable) so that an
// unprivileged uid can execute it; the go build cache is root's alone.
func helperBinary(t *testing.T, dir string) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	path := filepath.Join(dir, "ctlclient.test")
	dst, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		_ = dst.Close() // failing anyway
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// runClient runs the "ctlclient" helper against sock with the given
// credentials and returns what it reported.
func runClient(t *testing.T, bin, sock string, uid, gid uint32, groups []uint32) clientOutcome {
	t.Helper()
	cmd := exec.Command(bin)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CORE_E2E_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, helperVar+"=ctlclient", helperSockVar+"="+sock)
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: gid, Groups: groups}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helper as %d:%d: %v\nstdout: %s\nstderr: %s", uid, gid, err, stdout.String(), stderr.String())
	}
	var out clientOutcome
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("helper output %q: %v (stderr %s)", stdout.String(), err, stderr.String())
	}
	if out.UID != int(uid) || out.GID != int(gid) {
		t.Fatalf("helper ran as %d:%d, want %d:%d", out.UID, out.GID, uid, gid)
	}
	return out
}

func startPeer(t *testing.T, group string) (*e2e.Supervisor, string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("running a client under another uid needs root")
	}
	line := ""
	if group != "" {
		line = `control_group = "` + group + `"`
	}
	s := e2e.Start(t, e2e.Options{Config: strings.Replace(peerConfig, "@GROUP@", line, 1)})
	s.WaitState("idle", control.StateRunning, 30*time.Second)
	// The test directory is 0700: let others traverse it (not list it).
	if err := os.Chmod(s.Dir, 0o711); err != nil {
		t.Fatal(err)
	}
	return s, helperBinary(t, s.Dir)
}

func socketMode(t *testing.T, path string) (os.FileMode, uint32) {
	t.Helper()
	st, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode().Perm(), st.Sys().(*syscall.Stat_t).Gid
}

// TestControlSocketRefusesOtherUID: without control_group the socket is 0600
// and another uid cannot even connect (EACCES); with the file made 0666 it
// connects and the SO_PEERCRED check answers 403.
func TestControlSocketRefusesOtherUID(t *testing.T) {
	s, bin := startPeer(t, "")
	mode, _ := socketMode(t, s.Socket)
	if mode != 0o600 {
		t.Errorf("control socket mode %o, want 600", mode)
	}
	root := runClient(t, bin, s.Socket, 0, 0, nil)
	if root.Outcome != "ok" {
		t.Fatalf("root client: %+v", root)
	}
	out := runClient(t, bin, s.Socket, nobody, nobody, []uint32{})
	t.Logf("uid %d against the 0600 socket: %s %s (%s)", nobody, out.Outcome, out.Errno, out.Detail)
	if out.Outcome != "connect_error" || out.Errno != "EACCES" {
		t.Errorf("uid %d: %+v, want connect_error EACCES", nobody, out)
	}

	// Defence in depth: even if the file mode lets it connect, the peer's
	// credentials are refused.
	if err := os.Chmod(s.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	out = runClient(t, bin, s.Socket, nobody, nobody, []uint32{})
	t.Logf("uid %d against the socket made 0666: %s (%s)", nobody, out.Outcome, out.Detail)
	if out.Outcome != "forbidden" {
		t.Errorf("uid %d with a 0666 socket: %+v, want the 403 forbidden answer", nobody, out)
	}
	if !strings.Contains(s.Output(), "control: refused connection") {
		t.Errorf("the supervisor did not log the refused connection")
	}
	// The supervisor still serves root.
	if root := runClient(t, bin, s.Socket, 0, 0, nil); root.Outcome != "ok" {
		t.Errorf("root client after the refusals: %+v", root)
	}
}

// TestControlGroupAllowsMembers: with control_group = "nogroup" the socket
// is 0660 group nogroup; a client whose primary or supplementary group is
// nogroup is served, a client in neither is refused.
func TestControlGroupAllowsMembers(t *testing.T) {
	s, bin := startPeer(t, "nogroup")
	mode, gid := socketMode(t, s.Socket)
	t.Logf("control socket with control_group=nogroup: mode %o gid %d", mode, gid)
	if mode != 0o660 || gid != nobody {
		t.Errorf("control socket mode %o gid %d, want 660 and %d", mode, gid, nobody)
	}
	tests := []struct {
		name   string
		gid    uint32
		groups []uint32
		want   string
	}{
		{name: "primary group nogroup", gid: nobody, groups: []uint32{}, want: "ok"},
		{name: "supplementary group nogroup", gid: 4242, groups: []uint32{nobody}, want: "ok"},
		{name: "not in the group", gid: 4242, groups: []uint32{}, want: "connect_error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := runClient(t, bin, s.Socket, nobody, tt.gid, tt.groups)
			t.Logf("uid %d gid %d groups %v: %s %s %s", nobody, tt.gid, tt.groups, out.Outcome, out.Errno, out.Detail)
			if out.Outcome != tt.want {
				t.Errorf("got %+v, want %s", out, tt.want)
			}
		})
	}
	// A non-member that gets past the file mode is refused by SO_PEERCRED.
	if err := os.Chmod(s.Socket, 0o666); err != nil {
		t.Fatal(err)
	}
	out := runClient(t, bin, s.Socket, nobody, 4242, []uint32{})
	t.Logf("non-member against the socket made 0666: %s (%s)", out.Outcome, out.Detail)
	if out.Outcome != "forbidden" {
		t.Errorf("non-member with a 0666 socket: %+v, want forbidden", out)
	}
}
