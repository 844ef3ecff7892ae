package gunicorn

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/proc"
)

func TestArgvAndEnv(t *testing.T) {
	app := &config.App{Name: "web", Virtualenv: "/venv", Workers: 3, Args: []string{"--timeout", "5"}, WSGI: "app:app"}
	tests := []struct {
		name   string
		statsd string
		v      Version
		want   []string
	}{
		{"20.1", "", Version{20, 1}, []string{"/venv/bin/gunicorn", "--workers", "3", "--pid", "/run/apps/web/web.s7.g1.pid", "--timeout", "5", "app:app"}},
		{"25.1 with statsd", "127.0.0.1:9", Version{25, 1}, []string{"/venv/bin/gunicorn", "--workers", "3", "--pid", "/run/apps/web/web.s7.g1.pid", "--no-control-socket", "--statsd-host", "127.0.0.1:9", "--timeout", "5", "app:app"}},
		{"unknown version", "", Version{}, []string{"/venv/bin/gunicorn", "--workers", "3", "--pid", "/run/apps/web/web.s7.g1.pid", "--timeout", "5", "app:app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Argv(app, Pidfile("/run", "web", 7, 1), tt.statsd, tt.v); !slices.Equal(got, tt.want) {
				t.Errorf("Argv = %q, want %q", got, tt.want)
			}
		})
	}
	if got, want := ListenEnv(2), []string{"GUNICORN_FD=3,4", "GUNICORN_PID=-1"}; !slices.Equal(got, want) {
		t.Errorf("ListenEnv(2) = %q, want %q", got, want)
	}
}

func TestParseVersion(t *testing.T) {
	for in, want := range map[string]Version{"20.1.0\n": {20, 1}, "25.1": {25, 1}, "26.0.1rc1": {26, 0}, "x.y": {}, "21": {}, "": {}} {
		if got := parseVersion(in); got != want {
			t.Errorf("parseVersion(%q) = %v, want %v", in, got, want)
		}
	}
}

// TestProberAsksOncePerBinary: concurrent first callers share one probe,
// later callers read the cache, and a reinstalled gunicorn (new mtime) is
// asked again.
func TestProberAsksOncePerBinary(t *testing.T) {
	venv := t.TempDir()
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"python", "gunicorn"} {
		if err := os.WriteFile(filepath.Join(venv, "bin", name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var calls atomic.Int32
	release := make(chan struct{})
	p := NewProber(func(ctx context.Context, spec proc.Spec) ([]byte, proc.ExitInfo, error) {
		calls.Add(1)
		if spec.Cred == nil || spec.Cred.Uid != 33 {
			t.Errorf("probe credentials %+v, want the app's uid 33", spec.Cred)
		}
		<-release
		return []byte("25.1.0\n"), proc.ExitInfo{}, nil
	})
	app := &config.App{Name: "web", Virtualenv: venv}
	as := proc.Spec{Dir: "/", Cred: &syscall.Credential{Uid: 33, Gid: 33}}
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([]Version, 4)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = p.Version(ctx, app, as) }()
	}
	close(release)
	wg.Wait()
	for i, v := range got {
		if v != (Version{25, 1}) {
			t.Errorf("caller %d got %v, want 25.1", i, v)
		}
	}
	if v := p.Version(ctx, app, as); v != (Version{25, 1}) || calls.Load() != 1 {
		t.Errorf("cached Version = %v after %d probes, want 25.1 after 1", v, calls.Load())
	}
	later := time.Now().Add(time.Hour)
	if err := os.Chtimes(filepath.Join(venv, "bin", "gunicorn"), later, later); err != nil {
		t.Fatal(err)
	}
	p.Version(ctx, app, as)
	if calls.Load() != 2 {
		t.Errorf("probes after a reinstall = %d, want 2", calls.Load())
	}
	if v := p.Version(ctx, &config.App{Name: "novenv"}, as); v != (Version{}) || calls.Load() != 2 {
		t.Errorf("no virtualenv: %v after %d probes, want zero and no probe", v, calls.Load())
	}
}

func TestPidfileAndPoll(t *testing.T) {
	path := filepath.Join(t.TempDir(), "web.g1.pid")
	if _, err := ReadPidfile(path); err == nil {
		t.Error("ReadPidfile of a missing file succeeded")
	}
	if err := os.WriteFile(path, []byte("1234\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if pid, err := ReadPidfile(path); err != nil || pid != 1234 {
		t.Errorf("ReadPidfile = %d, %v; want 1234", pid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := PollUntil(ctx, 5*time.Millisecond, func() (bool, error) { return false, nil }); err != context.DeadlineExceeded {
		t.Errorf("PollUntil never true: %v, want DeadlineExceeded", err)
	}
	n := 0
	if err := PollUntil(context.Background(), time.Millisecond, func() (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Errorf("PollUntil: %v after %d calls, want nil after 3", err, n)
	}
	if b, total := Booted(os.Getpid()); b != 0 || total != 0 {
		t.Errorf("Booted(test process) = %d/%d, want 0/0 (no heartbeat files)", b, total)
	}
}

// TestUnlinksOnStop: a master that is the supervisor's child unlinks its
// sockets' names when it stops, unless "<pidfile>.2" names a live child of
// it (an old master in a USR2 pair); a master whose parent is another master
// (a new one, not yet promoted) does not.
func TestUnlinksOnStop(t *testing.T) {
	r := proc.NewReaper()
	defer r.Close()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	pid, exited, err := r.ForkExec(proc.Spec{Argv: []string{"/bin/sh", "-c", "sleep 60 & echo $!; wait"}, Env: []string{"PATH=/usr/bin:/bin"}, Dir: "/"}, p[1], p[1])
	unix.Close(p[1])
	if err != nil {
		unix.Close(p[0])
		t.Fatal(err)
	}
	defer func() {
		proc.SignalTree(pid, unix.SIGKILL)
		<-exited
	}()
	f := os.NewFile(uintptr(p[0]), "sh output")
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	child, cerr := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || cerr != nil {
		t.Fatalf("child pid: %q %v %v", line, err, cerr)
	}
	pidfile := filepath.Join(t.TempDir(), "web.g1.pid")
	if !UnlinksOnStop(pid, pidfile) {
		t.Error("a lone master: UnlinksOnStop = false, want true")
	}
	if err := os.WriteFile(pidfile+".2", []byte(strconv.Itoa(child)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if UnlinksOnStop(pid, pidfile) {
		t.Error("an old master with a live new master: UnlinksOnStop = true, want false")
	}
	if UnlinksOnStop(child, pidfile) {
		t.Error("a new master not yet promoted: UnlinksOnStop = true, want false")
	}
}

// TestRemovePidfiles: the pidfiles of an exited master go where they still
// name it; a promoted master's, a garbled one and missing ones stay or are
// no error.
func TestRemovePidfiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	exists := func(p string) bool {
		_, err := os.Lstat(p)
		return err == nil
	}
	// Killed master 100: its pidfile goes.
	killed := write("web.g1.pid", "100\n")
	// Killed new master 201 of a USR2 pair, not promoted: its ".2" goes,
	// the old master's pidfile stays.
	pair := write("web.g2.pid", "200\n")
	child := write("web.g2.pid.2", "201\n")
	// A garbled pidfile is not the exited master's.
	garbled := write("web.g3.pid", "\n")

	for _, tc := range []struct {
		pidfile string
		pid     int
	}{{killed, 100}, {pair, 201}, {garbled, 300}, {filepath.Join(dir, "web.g4.pid"), 400}} {
		if err := RemovePidfiles(tc.pidfile, tc.pid); err != nil {
			t.Errorf("RemovePidfiles(%s, %d): %v", filepath.Base(tc.pidfile), tc.pid, err)
		}
	}
	for p, want := range map[string]bool{killed: false, pair: true, child: false, garbled: true} {
		if exists(p) != want {
			t.Errorf("%s exists = %v, want %v", filepath.Base(p), !want, want)
		}
	}
	// The old master of the pair exits too: now its pidfile goes.
	if err := RemovePidfiles(pair, 200); err != nil || exists(pair) {
		t.Errorf("RemovePidfiles of the old master: %v, file left: %v", err, exists(pair))
	}
}

// TestRemovePidfilesIn: of a run directory's pidfiles, those naming the
// given exited masters go (a USR2 child's ".2" name too); the others stay.
func TestRemovePidfilesIn(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{"web.s7.g1.pid": "100\n", "web.s7.g2.pid": "200\n", "web.s7.g2.pid.2": "201\n", "web.s9.g1.pid": "300\n"}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := RemovePidfilesIn(dir, []int{100, 201, 999}); err != nil {
		t.Fatalf("RemovePidfilesIn: %v", err)
	}
	for name, want := range map[string]bool{"web.s7.g1.pid": false, "web.s7.g2.pid": true, "web.s7.g2.pid.2": false, "web.s9.g1.pid": true} {
		if _, err := os.Lstat(filepath.Join(dir, name)); (err == nil) != want {
			t.Errorf("%s exists = %v, want %v", name, err == nil, want)
		}
	}
}
