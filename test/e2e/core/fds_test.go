package core

import (
	"fmt"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

var fdsConfig = e2e.Config{HTTP: "127.0.0.1:0"}.String() + `
[app.fds]
allow_root = true
kind = "process"
command = ["/bin/sleep", "3600"]
listen = ["tcp://127.0.0.1:0"]

[app.other]
allow_root = true
kind = "process"
command = ["/bin/sleep", "3600"]
listen = ["tcp://127.0.0.1:0", "unix://@DIR@/other.sock"]

[app.web]
allow_root = true
virtualenv = "@VENV@"
directory = "@DIR@/app"
wsgi = "app:app"
workers = 2
listen = ["tcp://127.0.0.1:0", "unix://@DIR@/web.sock"]
`

// listenerInodes returns the inodes of app's held listeners: TCP ones from
// /proc/net/tcp by bound address, Unix ones among the supervisor's sockets
// by name (the name bound may differ from the configured path, e.g. a
// hidden hold name beside it, so match on the configured file name).
func listenerInodes(t *testing.T, a control.AppStatus, supSockets map[uint64]int) []uint64 {
	t.Helper()
	unixNames, err := testenv.UnixListeners()
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, l := range a.Listeners {
		switch l.Network {
		case "tcp":
			out = append(out, tcpListenInode(t, l.Bound))
		case "unix":
			base := filepath.Base(l.Bound)
			var found []uint64
			for ino, name := range unixNames {
				if _, held := supSockets[ino]; held && strings.Contains(name, base) {
					found = append(found, ino)
				}
			}
			if len(found) != 1 {
				t.Fatalf("app %s: listener %s: %d matching Unix sockets held by the supervisor (%v)", a.Name, l.Bound, len(found), found)
			}
			out = append(out, found[0])
		default:
			t.Fatalf("app %s: listener %+v: unknown network", a.Name, l)
		}
	}
	return out
}

// waitSleeping waits until pid has exec'd /bin/sleep (through the
// LISTEN_PID shim) and sleeps, so its descriptors are what it inherited.
func waitSleeping(t *testing.T, pid int) {
	t.Helper()
	testenv.WaitFor(t, 30*time.Second, fmt.Sprintf("pid %d sleeping in /bin/sleep", pid), func() bool {
		p, err := testenv.ReadStat(pid)
		return err == nil && p.Comm == "sleep" && p.State == 'S' && strings.HasSuffix(testenv.Exe(pid), "/sleep")
	})
}

func fdList(fds []fdEntry) string {
	var b []string
	for _, f := range fds {
		b = append(b, strconv.Itoa(f.FD)+"->"+f.Target)
	}
	return strings.Join(b, " ")
}

// TestAppDescriptorsAndGroups: every app runs in its own process group and
// holds only its own descriptors: a process app exactly 0, 1, 2 and its
// listeners (LISTEN_FDS); a Gunicorn master and its workers none of the
// supervisor's sockets except their app's listeners (no control socket, no
// other app's listener, no metrics or statsd socket) and none of its pipes
// except their own output pipe and their generation's access pipe
// (GUNISUP_ACCESS_FD, route metrics).
func TestAppDescriptorsAndGroups(t *testing.T) {
	s := startWeb(t, fdsConfig)
	apps := map[string]control.AppStatus{}
	for _, name := range []string{"fds", "other", "web"} {
		apps[name] = s.WaitState(name, control.StateRunning, 60*time.Second)
	}
	supPID := s.Cmd.Process.Pid
	supStat, err := testenv.ReadStat(supPID)
	if err != nil {
		t.Fatal(err)
	}
	supSockets := inodesOf(t, supPID, "socket")
	supPipes := inodesOf(t, supPID, "pipe")
	own := map[string][]uint64{}
	ownedBy := map[uint64]string{}
	for name, a := range apps {
		own[name] = listenerInodes(t, a, supSockets)
		for _, ino := range own[name] {
			if _, ok := supSockets[ino]; !ok {
				t.Fatalf("app %s listener inode %d is not held by the supervisor", name, ino)
			}
			ownedBy[ino] = name
		}
	}
	t.Logf("supervisor pid %d pgid %d holds %d sockets (%d app listeners, the rest control/metrics/statsd) and %d pipes",
		supPID, supStat.PGID, len(supSockets), len(ownedBy), len(supPipes))

	// Process groups: each app's main process leads its own group.
	groups := map[int]string{}
	for name, a := range apps {
		p, err := testenv.ReadStat(a.MasterPID)
		if err != nil {
			t.Fatal(err)
		}
		if p.PGID != a.MasterPID || p.PGID == supStat.PGID {
			t.Errorf("app %s: pid %d in group %d, want its own group (supervisor's is %d)", name, a.MasterPID, p.PGID, supStat.PGID)
		}
		if other, dup := groups[p.PGID]; dup {
			t.Errorf("apps %s and %s share process group %d", name, other, p.PGID)
		}
		groups[p.PGID] = name
		for _, w := range a.WorkerPIDs {
			if wp, err := testenv.ReadStat(w); err == nil && wp.PGID != a.MasterPID {
				t.Errorf("app %s: worker %d in group %d, want the master's %d", name, w, wp.PGID, a.MasterPID)
			}
		}
	}

	// Process apps: exactly 0, 1, 2 and their listeners, in listen order.
	for _, name := range []string{"fds", "other"} {
		a := apps[name]
		waitSleeping(t, a.MasterPID)
		fds := openFDs(t, a.MasterPID)
		t.Logf("app %s (pid %d) fds: %s", name, a.MasterPID, fdList(fds))
		_, outPipe, ok := testenv.KindInode(fds[1].Target)
		if !ok {
			t.Fatalf("app %s: fd 1 is %s, want a pipe", name, fds[1].Target)
		}
		_, errPipe, ok := testenv.KindInode(fds[2].Target)
		if !ok || errPipe == outPipe {
			t.Fatalf("app %s: fd 2 is %s, want a pipe of its own (stderr is captured apart)", name, fds[2].Target)
		}
		want := []string{"0->/dev/null", fmt.Sprintf("1->pipe:[%d]", outPipe), fmt.Sprintf("2->pipe:[%d]", errPipe)}
		for i, ino := range own[name] {
			want = append(want, fmt.Sprintf("%d->socket:[%d]", 3+i, ino))
		}
		if got := fdList(fds); got != strings.Join(want, " ") {
			t.Errorf("app %s fds:\n  %s\nwant exactly:\n  %s", name, got, strings.Join(want, " "))
		}
		for _, p := range []uint64{outPipe, errPipe} {
			if _, ok := supPipes[p]; !ok {
				t.Errorf("app %s: output pipe %d is not the supervisor's", name, p)
			}
		}
		env := environ(t, a.MasterPID)
		if env["LISTEN_FDS"] != strconv.Itoa(len(own[name])) || env["LISTEN_PID"] != strconv.Itoa(a.MasterPID) {
			t.Errorf("app %s: LISTEN_FDS=%q LISTEN_PID=%q, want %d and %d", name, env["LISTEN_FDS"], env["LISTEN_PID"], len(own[name]), a.MasterPID)
		}
		for _, k := range []string{"NOTIFY_SOCKET", "GUNICORN_FD", "SUPCTL_SOCKET"} {
			if v, ok := env[k]; ok {
				t.Errorf("app %s: inherited %s=%q", name, k, v)
			}
		}
	}

	// Gunicorn: master and workers.
	web := apps["web"]
	accessPipe := webAccessPipe(t, web.MasterPID)
	for _, pid := range append([]int{web.MasterPID}, web.WorkerPIDs...) {
		fds := openFDs(t, pid)
		role := "worker"
		if pid == web.MasterPID {
			role = "master"
			t.Logf("web master (pid %d) fds: %s", pid, fdList(fds))
		}
		_, outPipe, _ := testenv.KindInode(fds[1].Target)
		_, errPipe, _ := testenv.KindInode(fds[2].Target)
		var ownSeen, otherSockets int
		for _, f := range fds {
			kind, ino, ok := testenv.KindInode(f.Target)
			if !ok {
				continue
			}
			switch kind {
			case "socket":
				if _, held := supSockets[ino]; !held {
					otherSockets++ // Gunicorn's own (probe copy, statsd client, ...)
					continue
				}
				if ownedBy[ino] == "web" {
					ownSeen++
					continue
				}
				what := ownedBy[ino]
				if what == "" {
					what = "the supervisor's own (control, metrics or statsd)"
				} else {
					what = "app " + what + "'s listener"
				}
				t.Errorf("web %s %d: fd %d is socket %d, %s", role, pid, f.FD, ino, what)
			case "pipe":
				if _, held := supPipes[ino]; held && ino != outPipe && ino != errPipe && ino != accessPipe {
					t.Errorf("web %s %d: fd %d is pipe %d of the supervisor (another app's output?)", role, pid, f.FD, ino)
				}
			}
		}
		if ownSeen != len(own["web"]) {
			t.Errorf("web %s %d: %d of its %d listeners open", role, pid, ownSeen, len(own["web"]))
		}
		if role == "master" {
			t.Logf("web master: %d own listeners, %d sockets of its own making (probe, statsd client), 0 other supervisor sockets", ownSeen, otherSockets)
		}
	}
	keys := make([]int, 0, len(groups))
	for g := range groups {
		keys = append(keys, g)
	}
	sort.Ints(keys)
	t.Logf("process groups: supervisor %d, apps %v", supStat.PGID, keys)
}

// webAccessPipe returns the inode of the access pipe Gunicorn master pid
// writes request lines to (its descriptor GUNISUP_ACCESS_FD, route
// metrics), which it and its workers share with the supervisor by design.
func webAccessPipe(t *testing.T, pid int) uint64 {
	t.Helper()
	fd, err := strconv.Atoi(environ(t, pid)["GUNISUP_ACCESS_FD"])
	if err != nil {
		t.Fatalf("web master %d: GUNISUP_ACCESS_FD: %v", pid, err)
	}
	for _, f := range openFDs(t, pid) {
		if f.FD != fd {
			continue
		}
		if kind, ino, ok := testenv.KindInode(f.Target); ok && kind == "pipe" {
			return ino
		}
		t.Fatalf("web master %d: GUNISUP_ACCESS_FD=%d is %s, not a pipe", pid, fd, f.Target)
	}
	t.Fatalf("web master %d: GUNISUP_ACCESS_FD=%d is not open", pid, fd)
	return 0
}
