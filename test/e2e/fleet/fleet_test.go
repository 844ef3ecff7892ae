package fleet

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// playbookDir holds the shipped playbook the test runs.
const playbookDir = "../../../contrib/ansible"

// host is one supervisor of the fleet serving "web" from a release tree
// under load.
type host struct {
	name string
	*e2e.Supervisor
	// Releases is the directory the playbook ships releases into; Current
	// the app's directory link; First the release it starts with.
	Releases, Current, First string
	Addr                     string
	load                     *e2e.Loader
}

// gate is web's reload and health tables: swap reloads gated by two
// passes of /healthz half a second apart.
const gate = `
[app.web.reload]
strategy = "swap"
timeout = "60s"

[app.web.health]
path = "/healthz"
healthy_after = 2
interval = "500ms"
`

// startFleet starts n supervisors, each with web (two workers, the gate
// above) serving release v0, and waits until all of them run it.
func startFleet(t *testing.T, n int) []*host {
	t.Helper()
	cfg := e2e.Config{ShutdownTimeout: "30s", Apps: []e2e.App{{
		Directory: "@DIR@/srv/current",
		Extra:     gate,
	}}}.String()
	hosts := make([]*host, n)
	for i := range hosts {
		h := &host{name: fmt.Sprintf("host%d", i+1)}
		h.Supervisor = e2e.Start(t, e2e.Options{Config: cfg, Setup: func(dir string) {
			root := filepath.Join(dir, "srv")
			if err := os.MkdirAll(root, 0o755); err != nil {
				t.Fatal(err)
			}
			var dirs []string
			h.Current, dirs = testenv.MakeReleaseTree(t, root, testenv.Release{Version: "v0"})
			h.First, h.Releases = dirs[0], filepath.Join(root, "releases")
		}})
		hosts[i] = h
	}
	for _, h := range hosts {
		h.WaitState("web", control.StateRunning, 60*time.Second)
		h.Addr = h.Supervisor.Addr("web")
	}
	return hosts
}

// writeInventory writes an INI inventory of the hosts (group gunisup,
// local connection, each host's control socket and releases directory)
// and returns its path.
func writeInventory(t *testing.T, hosts []*host) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("[gunisup]\n")
	for _, h := range hosts {
		fmt.Fprintf(&b, "%s ansible_connection=local gunisup_control_socket=%s gunisup_releases=%s gunisup_app=web\n",
			h.name, h.Socket, h.Releases)
	}
	path := filepath.Join(t.TempDir(), "inventory.ini")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// rollout is one finished ansible-playbook run.
type rollout struct {
	Out  string
	Code int
	Took time.Duration
	// Failed is each host's failed= count in the play recap; a host the
	// play never reached is absent.
	Failed map[string]string
	// Deploys is how long each successful supctl deploy took, in order.
	Deploys []string
}

var (
	recapLine  = regexp.MustCompile(`(?m)^(\S+)\s+:\s+ok=\d+.*\sfailed=(\d+)`)
	deployLine = regexp.MustCompile(`deploy web: ok in ([0-9.]+m?s)`)
)

// runPlaybook ships the release directory src as release name to the
// inventory's hosts with contrib/ansible/deploy.yml, using supctl, and
// waits up to 3 minutes for it.
func runPlaybook(t *testing.T, playbook, inventory, supctl, src, name string) rollout {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tmp := t.TempDir()
	cmd := exec.CommandContext(ctx, playbook, "-i", inventory, "deploy.yml",
		"-e", "release_src="+src, "-e", "release="+name, "-e", "gunisup_supctl="+supctl)
	cmd.Dir = playbookDir
	cmd.Env = append(os.Environ(), "ANSIBLE_HOME="+tmp, "ANSIBLE_LOCAL_TEMP="+tmp, "ANSIBLE_REMOTE_TEMP="+tmp,
		"ANSIBLE_NOCOLOR=1", "ANSIBLE_PYTHON_INTERPRETER=auto_silent", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_PIPELINING=1")
	cmd.WaitDelay = 10 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	r := rollout{Out: string(out), Code: cmd.ProcessState.ExitCode(), Took: time.Since(start), Failed: map[string]string{}}
	if err != nil && r.Code == 0 {
		t.Fatalf("ansible-playbook: %v\n%s", err, out)
	}
	for _, m := range recapLine.FindAllStringSubmatch(r.Out, -1) {
		r.Failed[m[1]] = m[2]
	}
	for _, m := range deployLine.FindAllStringSubmatch(r.Out, -1) {
		r.Deploys = append(r.Deploys, m[1])
	}
	return r
}

// writeSource writes release r into a new directory on the controller
// and returns it.
func writeSource(t *testing.T, r testenv.Release) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), r.Version)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testenv.WriteRelease(t, dir, r)
	return dir
}

// checkServes fails the test unless h's status and its answers say it
// serves the release directory dir, whose GET / body is body.
func (h *host) checkServes(t *testing.T, dir, body string) {
	t.Helper()
	if st := h.App("web"); st.Release != dir {
		t.Errorf("%s: status release %s, want %s", h.name, st.Release, dir)
	}
	if link, err := os.Readlink(h.Current); err != nil || link != dir {
		t.Errorf("%s: %s -> %q (%v), want %s", h.name, h.Current, link, err, dir)
	}
	for i := 0; i < 5; i++ {
		st, got, err := testenv.Get(h.Addr, "/")
		if err != nil || st != 200 || got != body {
			t.Errorf("%s: GET / = %d %q (%v), want 200 %q", h.name, st, got, err, body)
			return
		}
	}
}

// checkLoad stops the load on every host and fails the test on any failed
// request or on a host that answered fewer than min.
func checkLoad(t *testing.T, hosts []*host, min int) {
	t.Helper()
	total, failed := 0, 0
	for _, h := range hosts {
		res := h.load.Stop()
		t.Logf("%s: %s", h.name, res)
		total += res.Requests
		failed += res.Failed()
		if res.Failed() != 0 || res.Requests < min {
			t.Errorf("%s: %d of %d requests failed (want none of at least %d): %v", h.name, res.Failed(), res.Requests, min, res.Errors)
		}
	}
	t.Logf("fleet load: %d requests, %d failed", total, failed)
}
