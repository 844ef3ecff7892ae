package upgrade

import (
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/listen/steer"
)

// TestUpgradeSteeredFallsBackToShared: a TCP listener steered by BPF is
// handed over by `supctl upgrade` as its holder socket, and the new image
// serves it in mode shared (the running generation keeps its own socket
// until it exits; later generations share the holder). Under load, the
// upgrade and a swap reload after it fail no request; status says bpf
// before and shared after; the Unix listener goes from rename to shared.
func TestUpgradeSteeredFallsBackToShared(t *testing.T) {
	if err := steer.Available(); err != nil {
		t.Skipf("BPF steering unavailable here: %v", err)
	}
	s := startSup(t, baseConfig)
	st := s.WaitRunning(90*time.Second, "web", "api", "worker")
	modes := func(name string) string {
		var m []string
		for _, l := range e2e.FindApp(t, s.Status(), name).Listeners {
			m = append(m, l.Steering)
		}
		return strings.Join(m, ",")
	}
	if got := modes("web") + "/" + modes("api"); got != "bpf/rename" {
		t.Fatalf("steering before the upgrade: web/api %s, want bpf/rename", got)
	}
	addr := e2e.FindApp(t, st, "web").Listeners[0].Bound
	load := e2e.StartLoad("tcp", addr, "/", 16)
	defer load.Stop()
	testenv.WaitFor(t, 30*time.Second, "load running", func() bool { return load.Snapshot().OK > 200 })

	s.installFile(s.v2)
	if r := s.Ctl("upgrade"); r.Code != 0 {
		t.Fatalf("upgrade: exit %d in %v:\n%s", r.Code, r.Took, r.Out)
	}
	if got := modes("web") + "/" + modes("api"); got != "shared/shared" {
		t.Errorf("steering after the upgrade: web/api %s, want shared/shared", got)
	}
	n := load.Snapshot().OK
	testenv.WaitFor(t, 30*time.Second, "load served after the upgrade", func() bool { return load.Snapshot().OK > n+200 })
	r := s.Ctl("reload", "web")
	t.Logf("swap reload after the upgrade: exit %d in %v", r.Code, r.Took)
	if r.Code != 0 {
		t.Fatalf("reload after the upgrade: exit %d:\n%s", r.Code, r.Out)
	}
	n = load.Snapshot().OK
	testenv.WaitFor(t, 30*time.Second, "load served after the reload", func() bool { return load.Snapshot().OK > n+200 })
	res := load.Stop()
	t.Logf("load: requests=%d ok=%d non2xx=%d refused=%d reset=%d timeout=%d other=%d errors=%v",
		res.Requests, res.OK, res.Non2xx, res.Refused, res.Reset, res.Timeout, res.OtherErr, res.Errors)
	if res.OK != res.Requests {
		t.Errorf("%d of %d requests failed across the upgrade and the reload", res.Requests-res.OK, res.Requests)
	}
}
