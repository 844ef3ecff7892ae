package fleet

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/e2e"
	"github.com/gunisup/supervisor/internal/testenv"
)

// TestAnsibleRollout runs contrib/ansible/deploy.yml against three
// supervisors under load (2 connections each). A good release reaches 3 of
// 3 hosts with no failed request. A release whose workers cannot boot then
// fails its gate on host 1, which rolls back and keeps answering the
// previous release; the play stops there, so hosts 2 and 3 never receive
// it and keep serving the previous release, again with no failed request.
func TestAnsibleRollout(t *testing.T) {
	playbook := testenv.Tool(t, "ansible-playbook", "ansible-core")
	hosts := startFleet(t, 3)
	inventory := writeInventory(t, hosts)
	supctl := hosts[0].Supctl

	startLoad(t, hosts)
	good := runPlaybook(t, playbook, inventory, supctl, writeSource(t, testenv.Release{Version: "v1"}), "v1")
	t.Logf("good release: ansible-playbook exit %d in %v, recap failed= %v, supctl deploys %v", good.Code, good.Took.Round(time.Millisecond), good.Failed, good.Deploys)
	if good.Code != 0 || len(good.Failed) != 3 {
		t.Fatalf("good release: exit %d, recap %v, want 0 and 3 hosts:\n%s", good.Code, good.Failed, good.Out)
	}
	for _, h := range hosts {
		if good.Failed[h.name] != "0" {
			t.Errorf("good release: %s failed=%s, want 0", h.name, good.Failed[h.name])
		}
		h.checkServes(t, filepath.Join(h.Releases, "v1"), "version=v1\n")
	}
	checkLoad(t, hosts, 20)

	startLoad(t, hosts)
	bad := runPlaybook(t, playbook, inventory, supctl, writeSource(t, testenv.Release{Version: "v2", Variant: testenv.ImportError}), "v2")
	t.Logf("broken release: ansible-playbook exit %d in %v, recap failed= %v", bad.Code, bad.Took.Round(time.Millisecond), bad.Failed)
	if bad.Code == 0 || bad.Failed["host1"] != "1" || len(bad.Failed) != 1 {
		t.Errorf("broken release: exit %d, recap %v, want non-zero and only host1 with failed=1:\n%s", bad.Code, bad.Failed, bad.Out)
	}
	if !strings.Contains(bad.Out, "pointed "+hosts[0].Current+" back at") {
		t.Errorf("broken release: host1's supctl did not report the rollback:\n%s", bad.Out)
	}
	for _, h := range hosts {
		h.checkServes(t, filepath.Join(h.Releases, "v1"), "version=v1\n")
	}
	if _, err := os.Stat(filepath.Join(hosts[0].Releases, "v2", "app.py")); err != nil {
		t.Errorf("host1: the broken release was not shipped: %v", err)
	}
	for _, h := range hosts[1:] {
		if _, err := os.Stat(filepath.Join(h.Releases, "v2")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: releases/v2: %v, want it absent (the play went on past host1)", h.name, err)
		}
	}
	checkLoad(t, hosts, 20)
}

// startLoad starts 2 connections of in-process load on each host's app;
// the test's cleanup stops them if checkLoad does not.
func startLoad(t *testing.T, hosts []*host) {
	for _, h := range hosts {
		l := e2e.StartLoad("tcp", h.Addr, "/", 2)
		h.load = l
		t.Cleanup(func() { l.Stop() })
	}
}
