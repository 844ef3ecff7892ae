package steer

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/listen/steer"
)

// TestRenameThroughNginx: nginx, running the shipped
// contrib/nginx/gunisup-site.conf, serves /static/ with far-future expiry
// for content-hashed names only, and proxies `hey -c 16` to the app's Unix
// socket for 10 s while a release answering 500 everywhere is reloaded and
// rolled back, then a good one swaps: no client sees a non-2xx answer or a
// socket error, the listener says "rename", and a stop afterwards leaves
// every master exiting 0 and no socket name behind.
func TestRenameThroughNginx(t *testing.T) {
	releases := []testenv.Release{{Version: "v0"}, {Version: "bad1", Variant: testenv.All500}, {Version: "v2"}}
	a := startApp(t, "unix", releases)
	if ls := a.App("web").Listeners; len(ls) != 1 || ls[0].Steering != string(steer.ModeRename) {
		t.Fatalf("listeners %+v, want one in mode rename", ls)
	}
	ngx := startNginx(t, a.Sock)
	ngx.checkStatic(t)
	load := startHey(t, ngx.Addr, 10*time.Second)

	start, r := a.reload(t, 1)
	if r.Code == 0 || !strings.Contains(r.Out, "rolled back") {
		t.Fatalf("reload to the failing release: exit %d, want rolled back:\n%s", r.Code, r.Out)
	}
	logRollback(t, a, 1, start)
	if _, r = a.reload(t, 2); r.Code != 0 {
		t.Fatalf("reload to v2: exit %d:\n%s", r.Code, r.Out)
	}
	testenv.WaitFor(t, 10*time.Second, "v2 answering through nginx", func() bool {
		st, body, err := testenv.Get(ngx.Addr, "/")
		return err == nil && st == 200 && body == "version=v2\n"
	})
	checkHey(t, "nginx -> unix", <-load, 1000)
	a.checkCleanStop(t)
}

// logRollback logs how long after its first and last worker booted the
// failing release i (reloaded at start) was rejected and stopped.
func logRollback(t *testing.T, a *app, i int, start time.Time) time.Duration {
	t.Helper()
	boots := a.bootTimes(i)
	rejected := a.phaseTime(regexp.MustCompile(`failed: .*; stopping it`), start)
	if len(boots) == 0 || rejected.IsZero() {
		t.Logf("release %d: no boot time (%d) or no rejection logged (%v)", i, len(boots), rejected)
		return 0
	}
	after := rejected.Sub(boots[0])
	t.Logf("release %d rejected %v after its first worker booted, %v after its last; %v after the command",
		i, after.Round(time.Millisecond), rejected.Sub(boots[len(boots)-1]).Round(time.Millisecond), rejected.Sub(start).Round(time.Millisecond))
	return after
}
