package supervise

import (
	"os"
	"testing"

	"github.com/gunisup/supervisor/recovery"
)

// TestRecordRunStateKeepsOwnGated: a record this process wrote (before a
// self-upgrade's exec) keeps its apps' gated releases; another process's
// record (a predecessor whose orphans are gone) gives none.
func TestRecordRunStateKeepsOwnGated(t *testing.T) {
	for _, tc := range []struct {
		name string
		pid  int
		want string
	}{{"own record", os.Getpid(), "/srv/web/releases/3"}, {"another process's record", os.Getppid(), ""}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := recovery.WriteRunState(dir, &recovery.RunState{PID: tc.pid, Apps: map[string]recovery.AppRun{"web": {Gated: "/srv/web/releases/3"}}}); err != nil {
				t.Fatal(err)
			}
			m := &Manager{runDir: dir, apps: map[string]*appSlot{}}
			m.RecordRunState(nil)
			got := ""
			if f := m.factsOf("web"); f != nil {
				got = f.Of().Gated
			}
			if got != tc.want {
				t.Errorf("gated release %q, want %q", got, tc.want)
			}
		})
	}
}
