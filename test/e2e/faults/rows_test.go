package faults

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

func stopSupervisor(t *testing.T) {
	f := start(t, opts{})
	l := f.load("web")
	pid := f.Cmd.Process.Pid
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	frozen := time.Now()
	resumed := false
	t.Cleanup(func() {
		if !resumed {
			_ = syscall.Kill(pid, syscall.SIGCONT) // the row failed while frozen: let the harness stop it
		}
	})
	base := l.Snapshot().OK
	<-time.After(5 * time.Second) // the fault itself: 5 s frozen
	during := l.Snapshot().OK - base
	if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	resumed = true
	t.Logf("%d requests answered during the 5 s freeze", during)
	if during < 100 {
		t.Errorf("only %d requests answered while the supervisor was frozen", during)
	}
	var took time.Duration
	testenv.WaitFor(t, 15*time.Second, "status after SIGCONT", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		st, err := f.Client().Status(ctx, "web")
		took = time.Since(frozen) - 5*time.Second
		return err == nil && len(st.Apps) == 1 && st.Apps[0].State == control.StateRunning && st.Apps[0].Healthy
	})
	t.Logf("status running and healthy %v after SIGCONT", took.Round(time.Millisecond))
	more(t, l, 200)
	noFailures(t, l.Stop(), 0)
	r := f.deploy("web", f.release("web", "v1", false))
	if res := r.Wait(t, 60*time.Second); res.Code != 0 {
		t.Errorf("reload after the freeze: exit %d in %v:\n%s", res.Code, res.Took, r.Output())
	}
	f.assertTracked()
}

// prlimitNofile sets pid's soft RLIMIT_NOFILE with prlimit(1) and returns
// the previous soft limit. Only the soft limit changes: raising a lowered
// hard limit again needs CAP_SYS_RESOURCE, which a container's root may lack.
func prlimitNofile(t *testing.T, pid int, soft string) string {
	t.Helper()
	out, err := exec.Command("prlimit", "--pid", strconv.Itoa(pid), "--nofile", "--output", "SOFT", "--noheadings", "--raw").Output()
	if err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	prev := strings.TrimSpace(string(out))
	if out, err := exec.Command("prlimit", "--pid", strconv.Itoa(pid), "--nofile="+soft+":").CombinedOutput(); err != nil {
		t.Fatalf("prlimit --nofile=%s: %v: %s", soft, err, out)
	}
	return prev
}

// rlimitSwap runs a swap with the supervisor's soft RLIMIT_NOFILE set to
// limit(fds it has open), then restores the limit and swaps again.
func rlimitSwap(t *testing.T, limit func(fds int) int) {
	f := start(t, opts{})
	pid := f.Cmd.Process.Pid
	fds0 := f.fds()
	l := f.load("web")
	lim := limit(fds0)
	prev := prlimitNofile(t, pid, strconv.Itoa(lim))
	r := f.deploy("web", f.release("web", "v1", false))
	rRes := r.Wait(t, 60*time.Second)
	code, took := rRes.Code, rRes.Took
	mid := f.fds()
	prlimitNofile(t, pid, prev)
	t.Logf("swap under RLIMIT_NOFILE %d (supervisor had %d fds): exit %d in %v, %d fds after:\n%s", lim, fds0, code, took.Round(time.Millisecond), mid, r.Output())
	if code != 0 && code != 1 {
		t.Errorf("deploy exit %d; want 0 (done) or 1 (failed cleanly)", code)
	}
	want := "v1"
	if code != 0 {
		want = "v0"
	}
	f.WaitState("web", control.StateRunning, 30*time.Second)
	f.waitBody("web", want)
	f.assertTracked()
	r2 := f.deploy("web", f.release("web", "v2", false))
	if res := r2.Wait(t, 90*time.Second); res.Code != 0 {
		t.Errorf("deploy with the limit restored: exit %d in %v:\n%s", res.Code, res.Took, r2.Output())
	}
	more(t, l, 200)
	noFailures(t, l.Stop(), 0)
	f.assertTracked()
	f.assertFDs(fds0)
}

func logDiskFull(t *testing.T) {
	logs := ""
	f := start(t, opts{
		Extra: "log = \"file\"\nlog_file = \"@DIR@/logs/web.log\"\nargs = [\"--access-logfile\", \"-\"]\n",
		Setup: func(dir string) {
			logs = filepath.Join(dir, "logs")
			testenv.Tmpfs(t, logs, "64k")
		},
	})
	l := f.load("web")
	testenv.WaitFor(t, 60*time.Second, "the log disk full", func() bool {
		var st syscall.Statfs_t
		return syscall.Statfs(logs, &st) == nil && st.Bavail == 0
	})
	full := l.Snapshot()
	more(t, l, 1000)
	res := l.Stop()
	app := f.App("web")
	t.Logf("disk full after %d requests; %d more served on a full disk; log_dropped %d, state %s", full.OK, res.OK-full.OK, app.LogDropped, app.State)
	noFailures(t, res, 0)
	if app.State != control.StateRunning || app.MasterPID == 0 {
		t.Errorf("web %s after the disk filled", app.State)
	}
	r := f.deploy("web", f.release("web", "v1", false))
	if res := r.Wait(t, 60*time.Second); res.Code != 0 {
		t.Errorf("reload on a full log disk: exit %d in %v:\n%s", res.Code, res.Took, r.Output())
	}
	f.assertTracked()
}

func listenTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := "tcp://" + ln.Addr().String()
	f := start(t, opts{Listen: addr, NoWait: true})
	code := f.Wait(30 * time.Second)
	out := f.Output()
	t.Logf("exit %d:\n%s", code, out)
	if code == 0 || code == -1 {
		t.Fatalf("supervisor exit %d; want a non-zero exit", code)
	}
	cfg, err := os.ReadFile(f.Config)
	if err != nil {
		t.Fatal(err)
	}
	line := 0
	for i, l := range strings.Split(string(cfg), "\n") {
		if strings.Contains(l, addr) {
			line = i + 1
		}
	}
	if want := fmt.Sprintf("%s:%d", f.Config, line); !strings.Contains(out, want) {
		t.Errorf("the error does not name %s", want)
	}
	testenv.AssertNoLeftovers(t, f.Mark, 10*time.Second)
}

func venvDeleted(t *testing.T) {
	f := start(t, opts{OwnVenv: true})
	old := f.App("web")
	l := f.load("web")
	if err := os.RemoveAll(filepath.Join(f.Dir, "venv")); err != nil {
		t.Fatal(err)
	}
	r := f.deploy("web", f.release("web", "v1", false))
	rRes := r.Wait(t, 90*time.Second)
	code, took := rRes.Code, rRes.Took
	t.Logf("deploy without its virtualenv: exit %d in %v:\n%s", code, took.Round(time.Millisecond), r.Output())
	if code != 1 {
		t.Errorf("deploy exit %d; want 1", code)
	}
	more(t, l, 300)
	noFailures(t, l.Stop(), 0)
	if after := f.App("web"); after.MasterPID != old.MasterPID {
		t.Errorf("master %d after the failed reload; want the old %d", after.MasterPID, old.MasterPID)
	}
	f.waitBody("web", "v0")
	f.assertTracked()
}

func configDeleted(t *testing.T) {
	f := start(t, opts{})
	l := f.load("web")
	if err := os.Remove(f.Config); err != nil {
		t.Fatal(err)
	}
	master := f.App("web").MasterPID
	out, code := f.SupctlRun("update")
	t.Logf("update with the config file deleted: exit %d: %s", code, strings.TrimSpace(out))
	if code == 0 || !strings.Contains(out, f.Config) || !strings.Contains(out, "nothing changed") {
		t.Errorf("update exit %d %q; want non-zero, naming %s, nothing changed", code, out, f.Config)
	}
	if now := f.App("web").MasterPID; now != master {
		t.Errorf("update of a deleted file changed the master %d -> %d", master, now)
	}
	r := f.deploy("web", f.release("web", "v1", false))
	rRes := r.Wait(t, 90*time.Second)
	code, took := rRes.Code, rRes.Took
	t.Logf("deploy with the config file deleted: exit %d in %v:\n%s", code, took.Round(time.Millisecond), r.Output())
	if code != 0 {
		t.Errorf("deploy exit %d; want 0 (the configuration lives in memory)", code)
	}
	f.waitBody("web", "v1")
	more(t, l, 300)
	noFailures(t, l.Stop(), 0)
	f.assertTracked()
}

func reloads50(t *testing.T) {
	f := start(t, opts{})
	fds0 := f.fds()
	rel := f.release("web", "v1", true)
	testenv.PointCurrent(t, filepath.Join(f.Dir, "web", "current"), rel)
	l := f.load("web")
	runs := make([]*e2e.AsyncCtl, 50)
	for i := range runs {
		runs[i] = f.CtlAsync("reload", "web")
	}
	testenv.WaitFor(t, 60*time.Second, "49 reloads answered", func() bool {
		n := 0
		for _, a := range runs {
			select {
			case <-a.Done():
				n++
			default:
			}
		}
		return n >= 49
	})
	openGate(t, rel)
	ok, busy, other := 0, 0, []string{}
	for _, a := range runs {
		code := a.Wait(t, 90*time.Second).Code
		switch {
		case code == 0:
			ok++
		case code == 1 && strings.Contains(a.Output(), "busy"):
			busy++
		default:
			other = append(other, fmt.Sprintf("exit %d: %s", code, a.Output()))
		}
	}
	t.Logf("50 reloads at once: %d succeeded, %d answered busy, others %v", ok, busy, other)
	if ok != 1 || busy != 49 {
		t.Errorf("%d reloads succeeded and %d were busy; want 1 and 49", ok, busy)
	}
	f.waitBody("web", "v1")
	more(t, l, 300)
	noFailures(t, l.Stop(), 0)
	f.assertTracked()
	f.assertFDs(fds0)
}

func termMidReload(t *testing.T) {
	f := start(t, opts{})
	rl := f.deploy("web", f.release("web", "v1", true))
	waitOutput(t, rl, "waiting for readiness")
	began := time.Now()
	code := f.Stop(syscall.SIGTERM, 40*time.Second)
	took := time.Since(began)
	rlRes := rl.Wait(t, 30*time.Second)
	rcode, _ := rlRes.Code, rlRes.Took
	t.Logf("SIGTERM mid-reload: supervisor exit %d in %v; deploy exit %d:\n%s", code, took.Round(time.Millisecond), rcode, rl.Output())
	if code != 0 {
		t.Errorf("supervisor exit %d; want 0", code)
	}
	if rcode == 0 {
		t.Errorf("the interrupted reload reported success")
	}
	testenv.AssertNoLeftovers(t, f.Mark, 10*time.Second)
}
