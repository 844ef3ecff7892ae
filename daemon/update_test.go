package daemon

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/internal/supctl"
	"github.com/gunisup/supervisor/internal/testenv"
)

// fileLine matches an error naming the configuration file and a line.
var fileLine = regexp.MustCompile(`supervisor\.toml:\d+: syntax error`)

// reread shows the change without making it; update makes exactly it; a
// broken file on update or SIGHUP changes nothing and names file:line; a
// reload of an app whose table changed says that update applies it; SIGHUP
// applies a valid file.
func TestRereadUpdateSighup(t *testing.T) {
	out := t.TempDir()
	app := func(name, extra string) string {
		return "[app." + name + "]\nallow_root = true\nkind = \"process\"\nstart_settle = \"100ms\"\ncommand = [\"/bin/sh\", \"-c\", \"echo $V > " + out + "/" + name + "; exec sleep 3600\"]\n" + extra
	}
	logs := &testenv.SyncBuffer{}
	r := startDaemon(t, daemonOpts{Log: logs, Body: app("keep", "") + app("gone", "") + app("envchg", "env = { V = \"1\" }\n")})
	sock := r.Sock
	write := func(body string) { r.WriteConfig(t, body, "", "") }
	run := func(args ...string) (string, error) {
		var b bytes.Buffer
		err := supctl.Run(append([]string{"-s", sock}, args...), &b, io.Discard)
		return b.String(), err
	}
	c := control.NewClient(sock)
	pids := func() map[string]int {
		st, err := c.Status(context.Background(), "")
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]int{}
		for _, a := range st.Apps {
			m[a.Name] = a.MasterPID
		}
		return m
	}
	R := control.StateRunning
	waitStates(t, sock, map[string]control.AppState{"keep": R, "gone": R, "envchg": R})
	before := pids()

	write(app("keep", "") + app("envchg", "env = { V = \"2\" }\n") + app("new", ""))
	got, err := run("reread")
	want := "keep: unchanged\nenvchg: changed (env): reload\nnew: added\ngone: removed\n"
	if err != nil || got != want {
		t.Fatalf("reread = %q, %v; want %q", got, err, want)
	}
	got, err = run("reload", "envchg")
	if err != nil || !strings.Contains(got, "`supctl update envchg` applies the file") {
		t.Errorf("reload of a changed app = %q, %v; want the update note", got, err)
	}
	waitStates(t, sock, map[string]control.AppState{"keep": R, "envchg": R})
	if b, _ := os.ReadFile(filepath.Join(out, "envchg")); strings.TrimSpace(string(b)) != "1" {
		t.Errorf("reload applied the file's env: V = %q, want 1", b)
	}
	if p := pids(); p["keep"] != before["keep"] || p["gone"] != before["gone"] || len(p) != 3 {
		t.Fatalf("reread changed something: before %v after %v", before, p)
	}
	before = pids()

	got, err = run("update")
	if err != nil {
		t.Fatalf("update = %q, %v", got, err)
	}
	t.Logf("update:\n%s", got)
	for _, w := range []string{"envchg: changed [env]: reload", "new: added", "gone: removed", "update all: ok"} {
		if !strings.Contains(got, w) {
			t.Errorf("update output lacks %q", w)
		}
	}
	waitStates(t, sock, map[string]control.AppState{"keep": R, "envchg": R, "new": R})
	after := pids()
	if after["keep"] != before["keep"] || after["envchg"] == before["envchg"] || len(after) != 3 {
		t.Errorf("after update: before %v after %v; want keep's PID kept, envchg's new, gone removed", before, after)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "envchg")); strings.TrimSpace(string(b)) != "2" {
		t.Errorf("updated env V = %q, want 2", b)
	}

	write(app("keep", "") + "[app.envchg\n")
	before = pids()
	for _, verb := range []string{"update", "reread"} {
		got, err = run(verb)
		if err == nil || !fileLine.MatchString(err.Error()) || !strings.Contains(err.Error(), "nothing changed") {
			t.Errorf("%s of a broken file = %q, %v; want an error naming file:line", verb, got, err)
		}
		if code := exitcode.Code(err); code != supctl.ExitUsage {
			t.Errorf("%s of a broken file: exit %d, want %d", verb, code, supctl.ExitUsage)
		}
	}
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "SIGHUP's failure logged", func() bool { return strings.Contains(logs.String(), "SIGHUP: update failed") })
	if !fileLine.MatchString(logs.String()) {
		t.Errorf("SIGHUP's error does not name file:line:\n%s", logs.String())
	}
	if p := pids(); p["keep"] != before["keep"] || p["envchg"] != before["envchg"] || p["new"] != before["new"] {
		t.Errorf("a broken file changed PIDs: before %v after %v", before, p)
	}

	write(app("keep", "") + app("envchg", "env = { V = \"2\" }\n") + app("new", "") + app("hup", ""))
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "SIGHUP's added app running", func() bool { return pids()["hup"] != 0 })
	if p := pids(); p["keep"] != before["keep"] || p["envchg"] != before["envchg"] || p["hup"] == 0 {
		t.Errorf("SIGHUP with one app added: before %v after %v", before, p)
	}
}
