package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/supctl"
	"github.com/gunisup/supervisor/internal/testenv"
)

// waitStates polls the control API until every app is in the state want
// names for it.
func waitStates(t *testing.T, sock string, want map[string]control.AppState) {
	t.Helper()
	c := control.NewClient(sock)
	testenv.WaitForState(t, 30*time.Second, fmt.Sprintf("states %v", want), func() (bool, string) {
		st, err := c.Status(context.Background(), "")
		if err != nil {
			return false, err.Error()
		}
		for _, a := range st.Apps {
			if w, in := want[a.Name]; in && a.State != w {
				return false, fmt.Sprintf("%+v", st.Apps)
			}
		}
		return true, ""
	})
}

func TestBulkVerbs(t *testing.T) {
	app := "allow_root = true\nkind = \"process\"\nstart_settle = \"100ms\"\ncommand = [\"/bin/sleep\", \"3600\"]\n"
	sock, _ := runDaemon(t, "[app.a]\n"+app+"[app.b]\n"+app+"[app.c]\n"+app+"[group.back]\napps = [\"b\", \"c\"]\n")
	run := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := supctl.Run(append([]string{"-s", sock}, args...), &out, io.Discard)
		return out.String(), err
	}
	R, S := control.StateRunning, control.StateStopped
	waitStates(t, sock, map[string]control.AppState{"a": R, "b": R, "c": R})
	out, err := run("stop", "group:back")
	if err != nil || out != "stop b: ok\nstop c: ok\n" {
		t.Fatalf("stop group:back = %q, %v", out, err)
	}
	waitStates(t, sock, map[string]control.AppState{"a": R, "b": S, "c": S})
	if out, err = run("stop", "a", "c"); err != nil || out != "stop a: ok\nstop c: ok\n" {
		t.Fatalf("stop a c = %q, %v", out, err)
	}
	if out, err = run("start", "all"); err != nil || out != "start a: ok\nstart b: ok\nstart c: ok\n" {
		t.Fatalf("start all = %q, %v", out, err)
	}
	waitStates(t, sock, map[string]control.AppState{"a": R, "b": R, "c": R})
	if out, err = run("stop", "a", "group:ghost"); err == nil || !strings.Contains(err.Error(), `no group "ghost"`) {
		t.Fatalf("stop a group:ghost = %q, %v; want an error naming the group", out, err)
	}
	waitStates(t, sock, map[string]control.AppState{"a": R})
}

// instances = 3 runs three processes, each supervised on its own as
// worker:0..worker:2 with {instance} substituted; `stop worker` stops all
// three and `start worker:1` one of them.
func TestInstancesSupervisedApart(t *testing.T) {
	out := t.TempDir()
	sock, _ := runDaemon(t, `[app.worker]
allow_root = true
kind = "process"
start_settle = "100ms"
command = ["/bin/sh", "-c", "echo $SLOT > `+out+`/{instance}; exec sleep 3600"]
env = { SLOT = "slot{instance}" }
instances = 3
`)
	R, S := control.StateRunning, control.StateStopped
	waitStates(t, sock, map[string]control.AppState{"worker:0": R, "worker:1": R, "worker:2": R})
	st, err := control.NewClient(sock).Status(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for i, a := range st.Apps {
		if want := "worker:" + strconv.Itoa(i); a.Name != want || a.MasterPID == 0 || seen[a.MasterPID] {
			t.Errorf("app %d: %s pid %d, want %s with a PID of its own", i, a.Name, a.MasterPID, want)
		}
		seen[a.MasterPID] = true
		b, err := os.ReadFile(filepath.Join(out, strconv.Itoa(i)))
		if err != nil || strings.TrimSpace(string(b)) != "slot"+strconv.Itoa(i) {
			t.Errorf("instance %d wrote %q, %v", i, b, err)
		}
	}
	var b bytes.Buffer
	if err := supctl.Run([]string{"-s", sock, "stop", "worker"}, &b, io.Discard); err != nil || b.String() != "stop worker:0: ok\nstop worker:1: ok\nstop worker:2: ok\n" {
		t.Fatalf("stop worker = %q, %v", b.String(), err)
	}
	b.Reset()
	if err := supctl.Run([]string{"-s", sock, "start", "worker:1"}, &b, io.Discard); err != nil || b.String() != "start worker:1: ok\n" {
		t.Fatalf("start worker:1 = %q, %v", b.String(), err)
	}
	waitStates(t, sock, map[string]control.AppState{"worker:0": S, "worker:1": R, "worker:2": S})
}
