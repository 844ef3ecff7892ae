package supervise

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/steer"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/status"
)

// TestUpdateAddsSteeredApp: an app that an update adds is opened as one
// NewManager opens: its Unix listener is steered by rename, its TCP one by
// BPF where the kernel allows (shared otherwise), and a Gunicorn app with
// statsd on gets its bridge opened.
func TestUpdateAddsSteeredApp(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "supervisor.toml")
	load := func(body string) *config.Config {
		t.Helper()
		text := fmt.Sprintf("[supervisor]\nrun_dir = %q\nhttp = \"\"\ncontrol_socket = %q\n%s", filepath.Join(dir, "run"), filepath.Join(dir, "c.sock"), body)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		return cfg
	}
	app := func(name, extra string) string {
		return "[app." + name + "]\nallow_root = true\nkind = \"process\"\nstart_settle = \"100ms\"\ncommand = [\"/bin/sleep\", \"3600\"]\n" + extra
	}
	sock := filepath.Join(dir, "added.sock")
	venv := filepath.Join(dir, "venv")
	if err := os.MkdirAll(filepath.Join(venv, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"python", "gunicorn"} {
		if err := os.Symlink("/usr/bin/python3", filepath.Join(venv, "bin", name)); err != nil {
			t.Fatal(err)
		}
	}
	web := fmt.Sprintf("[app.web]\nallow_root = true\nautostart = false\nvirtualenv = %q\nwsgi = \"app:app\"\nlisten = [\"tcp://127.0.0.1:0\"]\n", venv)
	var mu sync.Mutex
	var bridges []string
	reaper := proc.NewReaper()
	t.Cleanup(reaper.Close)
	m, err := NewManager(load(app("keep", "")), reaper, Options{OpenStatsd: func(app string) error {
		mu.Lock()
		defer mu.Unlock()
		bridges = append(bridges, app)
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	m.Start(ctx)
	defer func() { _ = m.Stop(ctx) }()
	waitAll(t, m, 30*time.Second, "running", func(s status.AppSnapshot) bool { return s.State == status.Running })

	next := load(app("keep", "") + app("added", fmt.Sprintf("listen = [\"unix://%s\", \"tcp://127.0.0.1:0\"]\n", sock)) + web)
	res, err := m.Update(ctx, next, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
	}
	tcp := steer.ModeBPF
	if err := steer.Available(); err != nil {
		tcp = steer.ModeShared
		t.Logf("BPF steering unavailable here (%v): the TCP listener is shared", err)
	}
	var modes []string
	for _, s := range m.Snapshots() {
		if s.Name == "added" {
			for _, l := range s.Listeners {
				modes = append(modes, l.Steering)
			}
		}
	}
	if want := []string{string(steer.ModeRename), string(tcp)}; !slices.Equal(modes, want) {
		t.Errorf("added app's listeners: %v, want %v", modes, want)
	}
	c, err := net.DialTimeout("unix", sock, 5*time.Second)
	if err != nil {
		t.Errorf("connect to the added app's socket: %v", err)
	} else {
		_ = c.Close() // only the connect mattered
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(bridges, []string{"web"}) {
		t.Errorf("statsd bridges opened for %v, want [web]", bridges)
	}
}
