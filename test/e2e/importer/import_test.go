// Package importer holds the end-to-end test of `supervisor import`: a
// supervisord program running Gunicorn, converted, runs on a held socket
// and reloads under load without a failed request.
package importer

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}

// flaskINI is a supervisord program as a Flask user writes it; VENV is the
// test's virtualenv. Port 0: the supervisor binds an ephemeral port.
const flaskINI = `; /etc/supervisor/conf.d/web.conf
[program:web]
command=VENV/bin/gunicorn -w 2 -b 127.0.0.1:0 --timeout 30 --pid /tmp/web.pid app:app
directory=%(here)s/app
autostart=true
autorestart=true
stopwaitsecs=20
redirect_stderr=true
stdout_logfile=/dev/stdout
stdout_logfile_maxbytes=0
environment=FLASK_ENV="production"
`

// TestImportedGunicornReloadsUnderLoad converts flaskINI with the real
// binary, starts the supervisor on the result, checks that the app is
// served on a socket the supervisor holds, and reloads it three times
// under 8 connections of load: no request may fail.
func TestImportedGunicornReloadsUnderLoad(t *testing.T) {
	venv := testenv.Venv(t)
	src := testenv.ShortTempDir(t)
	if err := os.Mkdir(filepath.Join(src, "app"), 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.WriteRelease(t, filepath.Join(src, "app"), testenv.Release{Version: "v1"})
	ini := filepath.Join(src, "web.conf")
	if err := os.WriteFile(ini, []byte(strings.ReplaceAll(flaskINI, "VENV", venv)), 0o644); err != nil {
		t.Fatal(err)
	}
	bin, _ := e2e.Binaries(t)
	cmd := exec.Command(bin, "import", ini)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("supervisor import: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "--pid /tmp/web.pid dropped") {
		t.Errorf("import's warnings lack the dropped --pid:\n%s", stderr.String())
	}
	toml := strings.Replace(string(out), "[supervisor]\n",
		"[supervisor]\ncontrol_socket = \"@SOCK@\"\nhttp = \"\"\nrun_dir = \"@DIR@/run\"\n", 1)
	s := e2e.Start(t, e2e.Options{Config: toml})
	s.WaitRunning(60*time.Second, "web")
	app := s.App("web")
	if len(app.Listeners) != 1 || app.Kind != "gunicorn" {
		t.Fatalf("web: kind %q, listeners %+v; want a gunicorn app on one held socket", app.Kind, app.Listeners)
	}
	addr := s.Addr("web")
	if code, body, err := testenv.Get(addr, "/"); err != nil || code != 200 || body != "version=v1\n" {
		t.Fatalf("GET / on %s: %d %q %v", addr, code, body, err)
	}

	load := e2e.StartLoad("tcp", addr, "/", 8)
	defer load.Stop()
	testenv.WaitFor(t, 20*time.Second, "load running", func() bool { return load.Snapshot().OK > 100 })
	for i := range 3 {
		if r := s.Ctl("reload", "web"); r.Code != 0 {
			t.Fatalf("reload %d: exit %d\n%s", i+1, r.Code, r.Out)
		} else {
			t.Logf("reload %d: %v", i+1, r.Took.Round(time.Millisecond))
		}
	}
	res := load.Stop()
	t.Logf("load across 3 reloads: %s", res)
	if res.Failed() != 0 || res.OK == 0 {
		t.Errorf("%d of %d requests failed across the reloads: %s", res.Failed(), res.Requests, res)
	}
}
