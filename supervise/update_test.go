package supervise

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/status"
)

// An update adds, removes, restarts (env of a process app), changes in
// place (restart policy) and leaves alone exactly the apps the new file
// says; the unchanged and in-place apps keep their PIDs.
func TestManagerUpdate(t *testing.T) {
	out := t.TempDir()
	proc := func(name, extra string) string {
		return "[app." + name + "]\nallow_root = true\nkind = \"process\"\nstart_settle = \"100ms\"\ncommand = [\"/bin/sh\", \"-c\", \"echo $V > " + out + "/" + name + "; exec sleep 3600\"]\n" + extra
	}
	m, load := realManagerAt(t, proc("keep", "")+proc("gone", "")+proc("envchg", "env = { V = \"1\" }\n")+proc("policy", ""))
	ctx := context.Background()
	m.Start(ctx)
	defer func() { _ = m.Stop(ctx) }()
	waitAll(t, m, 30*time.Second, "running", func(s status.AppSnapshot) bool { return s.State == status.Running })
	before := pids(m)

	next, err := load(proc("keep", "") + proc("envchg", "env = { V = \"2\" }\n") + proc("policy", "restart = \"on-failure\"\n") + proc("new", ""))
	if err != nil {
		t.Fatal(err)
	}
	var phases []string
	res, err := m.Update(ctx, next, nil, func(msg string) { phases = append(phases, msg) })
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range res {
		got[r.Name] = r.Outcome(r.Err)
		if r.Err != nil {
			t.Errorf("%s: %v", r.Name, r.Err)
		}
	}
	want := map[string]string{
		"keep": "unchanged", "gone": "removed", "new": "added",
		"envchg": "changed [env]: reload", "policy": "changed [restart]: in place",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %q, want %q", k, got[k], v)
		}
	}
	t.Logf("phases: %q", phases)
	waitAll(t, m, 30*time.Second, "running", func(s status.AppSnapshot) bool { return s.State == status.Running })
	after := pids(m)
	if after["keep"] != before["keep"] || after["policy"] != before["policy"] {
		t.Errorf("unchanged or in-place app changed PID: before %v after %v", before, after)
	}
	if after["envchg"] == before["envchg"] || after["new"] == 0 {
		t.Errorf("changed app kept its PID or new app not running: before %v after %v", before, after)
	}
	if _, ok := after["gone"]; ok {
		t.Errorf("removed app still listed: %v", after)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "envchg")); strings.TrimSpace(string(b)) != "2" {
		t.Errorf("changed app's env V = %q, want 2", b)
	}
	if a := m.Config().App("policy"); a.Restart != config.RestartOnFailure {
		t.Errorf("running configuration's policy app restart = %v", a.Restart)
	}
	res, _ = m.Update(ctx, next, nil, nil)
	for _, r := range res {
		if r.Change != config.Unchanged || r.Err != nil {
			t.Errorf("second update of the same file: %+v", res)
		}
	}
	if len(res) != 4 {
		t.Errorf("second update of the same file: %d results, want 4", len(res))
	}
}

func pids(m *Manager) map[string]int {
	out := map[string]int{}
	for _, s := range m.Snapshots() {
		out[s.Name] = s.MasterPID
	}
	return out
}
