package gen

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/apm"
	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/proc"
)

// TestAccessPipe checks what a routed generation's spec gets (the logger
// class before the WSGI target, the pipe's write end after the listeners,
// named in the environment, the module in the run directory) and that a
// line written on the pipe reaches the app's route metrics once the
// reader runs; an app with route_metrics off is left alone.
func TestAccessPipe(t *testing.T) {
	runDir := t.TempDir()
	s := &Spawner{Routes: apm.NewSet(apm.Options{}), RunDir: runDir, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	app := &config.App{Name: "web", Kind: config.KindGunicorn, Identity: config.Identity{UID: os.Getuid(), GID: os.Getgid()},
		Routes: config.RouteMetrics{Enabled: true, Cap: 10, ApdexT: time.Second, CompareWindow: time.Minute}}
	if err := gunicorn.MakeRunDir(runDir, app); err != nil {
		t.Fatal(err)
	}
	spec := proc.Spec{Argv: []string{"/venv/bin/gunicorn", "--workers", "2", "app:app"}, Env: []string{"PATH=/bin"}, Files: []int{7, 8}}
	p, err := s.withAccessPipe(app, &spec)
	if err != nil || p == nil {
		t.Fatalf("withAccessPipe: %v, %v", p, err)
	}
	if want := []string{"/venv/bin/gunicorn", "--workers", "2", "--logger-class", gunicorn.AccessClass, "app:app"}; !slices.Equal(spec.Argv, want) {
		t.Errorf("argv %q, want %q", spec.Argv, want)
	}
	if len(spec.Files) != 3 || spec.Files[2] != p.w {
		t.Errorf("files %v: want the write end %d third", spec.Files, p.w)
	}
	if !slices.Contains(spec.Env, "GUNISUP_ACCESS_FD=5") || !slices.Contains(spec.Env, "PYTHONPATH="+config.AppRunDir(runDir, "web")) {
		t.Errorf("env %q lacks GUNISUP_ACCESS_FD=5 or the run directory on PYTHONPATH", spec.Env)
	}
	if _, err := os.Stat(filepath.Join(config.AppRunDir(runDir, "web"), gunicorn.AccessModule+".py")); err != nil {
		t.Error(err)
	}
	w, err := unix.Dup(p.w) // the master's copy
	if err != nil {
		t.Fatal(err)
	}
	s.startReading(app, p, 1, os.Getpid(), "/srv/r1", false)
	line := "1 9 " + strconv.Itoa(os.Getpid()) + " GET 200 1000 -1 0 /items/3\n"
	if _, err := unix.Write(w, []byte(line)); err != nil {
		t.Fatal(err)
	}
	if err := unix.Close(w); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the line counted", func() bool {
		return s.Routes.App("web").Requests() == 1
	})
	off := *app
	off.Routes.Enabled = false
	spec2 := proc.Spec{Argv: []string{"g", "app:app"}}
	if p, err := s.withAccessPipe(&off, &spec2); p != nil || err != nil || len(spec2.Argv) != 2 {
		t.Errorf("route_metrics off: pipe %v, err %v, argv %q; want none and argv unchanged", p, err, spec2.Argv)
	}
}

// TestAdoptAccess reads an access pipe handed over by a previous image:
// a line written on it reaches the app's route metrics, and the reader
// hands the descriptor on until it reaches EOF; with route metrics off
// nothing reads it.
func TestAdoptAccess(t *testing.T) {
	s := &Spawner{Routes: apm.NewSet(apm.Options{}), RunDir: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	app := &config.App{Name: "web", Kind: config.KindGunicorn,
		Routes: config.RouteMetrics{Enabled: true, Cap: 10, ApdexT: time.Second, CompareWindow: time.Minute}}
	var fds [2]int
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	r := s.adoptAccess(app, fds[0], 3, os.Getpid(), "/srv/r3")
	if r == nil || r.handoverFD() != fds[0] {
		t.Fatalf("reader %v: want one handing over fd %d", r, fds[0])
	}
	line := "1 9 " + strconv.Itoa(os.Getpid()) + " GET 200 1000 -1 0 /items/3\n"
	if _, err := unix.Write(fds[1], []byte(line)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the line counted", func() bool {
		return s.Routes.App("web").Requests() == 1
	})
	closeFDs(fds[1])
	<-r.done
	if fd := r.handoverFD(); fd != -1 {
		t.Errorf("handover fd %d after EOF, want -1", fd)
	}
	off := *app
	off.Routes.Enabled = false
	if err := unix.Pipe2(fds[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer closeFDs(fds[1])
	if r := s.adoptAccess(&off, fds[0], 4, os.Getpid(), "/srv/r4"); r != nil {
		t.Errorf("route_metrics off: reader %v, want none", r)
	}
}
