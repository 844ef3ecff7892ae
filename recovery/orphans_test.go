package recovery

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/proc"
)

// TestRestoreLinks: a recovering supervisor points the link of a deploy
// its predecessor left unfinished back at the release before it, and only
// then: not for a release that passed the gate, a link moved since, or a
// reload (whose link the supervisor never moved).
func TestRestoreLinks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		deploy bool
		gated  int // release that passed the gate last
		now    int // release the link points at when the successor starts
		want   int
	}{
		{"unfinished deploy", true, 0, 1, 0},
		{"deploy that passed the gate", true, 1, 1, 1},
		{"link moved since", true, 0, 2, 2},
		{"reload", false, 0, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			var rel []string
			for _, v := range []string{"v0", "v1", "v2"} {
				d := filepath.Join(root, v)
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
				rel = append(rel, d)
			}
			link := filepath.Join(root, "current")
			if err := os.Symlink(rel[tc.now], link); err != nil {
				t.Fatal(err)
			}
			change := &RunChange{Deploy: tc.deploy, Link: link, Target: rel[1], Previous: rel[0]}
			o := &Orphans{
				Prev:   &RunState{Apps: map[string]AppRun{"web": {Gated: rel[tc.gated], Change: change}}},
				logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			}
			o.RestoreLinks(&config.Config{Apps: []*config.App{{Name: "web", Directory: link}}})
			if got, err := os.Readlink(link); err != nil || got != rel[tc.want] {
				t.Errorf("link -> %q (%v), want %s", got, err, rel[tc.want])
			}
		})
	}
}

// TestAdopts: an app tracks its orphans' serving generation when one is
// recorded and its sockets are held, or it has no listener; never without
// orphans.
func TestAdopts(t *testing.T) {
	o := &Orphans{apps: map[string]AppRun{"web": {Serving: &RunGen{ID: 3}}, "idle": {}}}
	web := &config.App{Name: "web", Listen: []config.Listener{{Raw: "127.0.0.1:0"}}}
	for _, tc := range []struct {
		name string
		o    *Orphans
		app  *config.App
		held bool
		want bool
	}{
		{"held", o, web, true, true},
		{"not held", o, web, false, false},
		{"no listener", o, &config.App{Name: "web"}, false, true},
		{"nothing serving", o, &config.App{Name: "idle"}, true, false},
		{"not recorded", o, &config.App{Name: "api"}, true, false},
		{"no orphans", nil, web, true, false},
	} {
		if got := tc.o.Adopts(tc.app, tc.held); got != tc.want {
			t.Errorf("%s: Adopts = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestGenStop: an adopted orphan generation (a process group that is
// not the test's child in the supervisor's sense: it is watched by pidfd)
// stops on its stop signal, and Done closes once its master has exited;
// a recorded leader start time that does not match is Done at once.
func TestGenStop(t *testing.T) {
	group := startGroup(t)
	pid, started := group.PGID, group.Leader
	members := func() []int {
		tree, err := proc.Scan("")
		if err != nil {
			return nil
		}
		return GroupMembers(tree, ProcGroup{PGID: pid, Leader: started})
	}
	stale := NewGen("web", RunGen{ID: 4, Group: ProcGroup{PGID: pid, Leader: started + 1}}, members, time.Second, func() {})
	select {
	case <-stale.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("an orphan generation whose leader started at another time is not done")
	}
	cleaned := make(chan struct{})
	g := NewGen("web", RunGen{ID: 4, Group: ProcGroup{PGID: pid, Leader: started}, Dir: "/srv/web"}, members, time.Second, func() { close(cleaned) })
	if g.Exited() || g.PID() != pid || g.Dir() != "/srv/web" {
		t.Fatalf("adopted generation: exited %v, pid %d, dir %s", g.Exited(), g.PID(), g.Dir())
	}
	if _, err := g.Stop(t.Context(), syscall.SIGTERM, 5*time.Second); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	<-cleaned
	if left := members(); len(left) != 0 {
		t.Errorf("processes of the orphan generation left after Stop: %v", left)
	}
}
