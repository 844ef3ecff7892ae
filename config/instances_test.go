package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestInstances(t *testing.T) {
	dir := fixture(t)
	cfg, err := Load(writeConfig(t, dir, `
[app.worker]
allow_root = true
kind = "process"
command = ["tool", "--queue", "q{instance}"]
env = { SLOT = "{instance}", FIXED = "x" }
instances = 3

[app.beat]
allow_root = true
kind = "process"
command = ["tool"]
after = ["worker"]

[group.all_workers]
apps = ["worker"]
`))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range cfg.Apps {
		names = append(names, a.Name)
	}
	if want := []string{"worker:0", "worker:1", "worker:2", "beat"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("apps %v, want %v", names, want)
	}
	w2 := cfg.App("worker:2")
	if w2.Command[2] != "q2" || w2.Env["SLOT"] != "2" || w2.Env["FIXED"] != "x" || w2.InstanceOf != "worker" || w2.Instance != 2 {
		t.Errorf("worker:2 = command %v env %v instance of %q #%d", w2.Command, w2.Env, w2.InstanceOf, w2.Instance)
	}
	if cfg.App("worker:0").Command[2] != "q0" {
		t.Errorf("instances share their command: %v", cfg.App("worker:0").Command)
	}
	if got := cfg.App("beat").After; !reflect.DeepEqual(got, []string{"worker:0", "worker:1", "worker:2"}) {
		t.Errorf("beat after %v", got)
	}
	if got := cfg.Group("all_workers").Apps; len(got) != 3 {
		t.Errorf("group apps %v", got)
	}

	_, err = Load(writeConfig(t, dir, `
[app.web]
allow_root = true
virtualenv = "venv"
wsgi = "app:app"
listen = ["tcp://127.0.0.1:8000"]
instances = 2
`))
	if err == nil || !strings.Contains(err.Error(), `:7: app.web.instances: only valid for kind "process"`) {
		t.Errorf("instances on a gunicorn app: %v", err)
	}
}

func TestInstanceLogFile(t *testing.T) {
	dir := fixture(t)
	const app = `
[app.worker]
allow_root = true
kind = "process"
command = ["tool"]
instances = 2
log = "file"
`
	cfg, err := Load(writeConfig(t, dir, app+`log_file = "logs/worker-{instance}.log"`+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	for i, name := range []string{"worker:0", "worker:1"} {
		want := filepath.Join(dir, "logs", fmt.Sprintf("worker-%d.log", i))
		if got := cfg.App(name).Log.File; got != want {
			t.Errorf("%s log_file %q, want %q", name, got, want)
		}
	}
	_, err = Load(writeConfig(t, dir, app+`log_file = "logs/worker.log"`+"\n"))
	if err == nil || !strings.Contains(err.Error(), "app.worker.log_file: must contain {instance}") {
		t.Errorf("shared log_file with instances: %v", err)
	}
}
