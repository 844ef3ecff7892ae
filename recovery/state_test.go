package recovery

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"github.com/gunisup/supervisor/proc"
)

// TestRunStateRoundTrip: what WriteRunState writes, ReadRunState reads back;
// no temporary file is left; a missing record is nil, a corrupt one an error.
func TestRunStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if st, err := ReadRunState(dir); st != nil || err != nil {
		t.Fatalf("ReadRunState of an empty run_dir = %v, %v; want nil, nil", st, err)
	}
	want := &RunState{PID: 42, Started: 7, Apps: map[string]AppRun{
		"web": {
			Groups:    []ProcGroup{{PGID: 100, Leader: 5}, {PGID: 200}},
			Cgroups:   []string{"/sys/fs/cgroup/gunisup-42/web"},
			Listeners: []RunListener{{Address: "tcp://127.0.0.1:0", Bound: "127.0.0.1:41234"}, {Address: "unix:///run/web.sock", Bound: "/run/web.sock"}},
		},
		"worker": {},
	}}
	for range 2 { // the second write replaces the first
		if err := WriteRunState(dir, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := ReadRunState(dir)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("round trip = %+v, %v; want %+v", got, err, want)
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 || ents[0].Name() != RunStateFile {
		t.Errorf("run_dir holds %v, want only %s", ents, RunStateFile)
	}
	if err := os.WriteFile(filepath.Join(dir, RunStateFile), []byte("{"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadRunState(dir); err == nil {
		t.Error("ReadRunState of a truncated record: no error")
	}
}

// TestGroupMembersPidReuse: a group is its members while its leader is the
// recorded process; a leader with another start time (the pid reused) makes
// the group empty.
func TestGroupMembersPidReuse(t *testing.T) {
	tree, err := proc.Scan("")
	if err != nil {
		t.Fatal(err)
	}
	pgid := os.Getpid()
	self, ok := tree.Stat(pgid)
	if !ok {
		t.Fatal("own stat missing")
	}
	pgid = self.PGRP
	leader, ok := tree.Stat(pgid)
	if !ok {
		t.Skipf("the leader of this test's process group %d has exited", pgid)
	}
	g := ProcGroup{PGID: pgid, Leader: leader.Starttime}
	if got := GroupMembers(tree, g); !slices.Contains(got, os.Getpid()) {
		t.Errorf("members of group %d = %v, want this process %d among them", pgid, got, os.Getpid())
	}
	g.Leader++
	if got := GroupMembers(tree, g); got != nil {
		t.Errorf("members of group %d with a reused leader pid = %v, want none", pgid, got)
	}
}

// TestAddServing: a serving master is recorded with its process group;
// none (pid 0) or one that is not in the tree adds nothing. NewRunState
// names this process.
func TestAddServing(t *testing.T) {
	tree, err := proc.Scan("")
	if err != nil {
		t.Fatal(err)
	}
	self, ok := tree.Stat(os.Getpid())
	if !ok {
		t.Fatal("own stat missing")
	}
	var run AppRun
	run.AddServing(tree, os.Getpid(), 3, "/srv/r3")
	if run.Serving == nil || run.Serving.ID != 3 || run.Serving.Dir != "/srv/r3" || run.Serving.Group.PGID != self.PGRP ||
		len(run.Groups) != 1 || run.Groups[0] != run.Serving.Group {
		t.Errorf("serving this process: %+v groups %v", run.Serving, run.Groups)
	}
	var none AppRun
	none.AddServing(tree, 0, 1, "")
	none.AddServing(tree, 1<<30, 1, "") // above pid_max: never in a tree
	if none.Serving != nil || none.Groups != nil {
		t.Errorf("no master: %+v", none)
	}
	if st := NewRunState(); st.PID != os.Getpid() || st.Started == 0 || st.Apps == nil {
		t.Errorf("NewRunState = %+v", st)
	}
}

// TestFindOrphans: no record, a record this process wrote (a self-upgrade)
// and one whose processes are all gone give nothing; a record whose writer
// still runs is an error; a live group is found.
func TestFindOrphans(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := t.TempDir()
	write := func(st *RunState) {
		t.Helper()
		if err := WriteRunState(dir, st); err != nil {
			t.Fatal(err)
		}
	}
	if o, err := FindOrphans(dir, logger); o != nil || err != nil {
		t.Errorf("no record: %v, %v", o, err)
	}
	write(&RunState{PID: os.Getpid()})
	if o, err := FindOrphans(dir, logger); o != nil || err != nil {
		t.Errorf("own record: %v, %v", o, err)
	}
	parent := os.Getppid()
	started, err := proc.StartTime(parent)
	if err != nil {
		t.Fatal(err)
	}
	write(&RunState{PID: parent, Started: started})
	if _, err := FindOrphans(dir, logger); err == nil {
		t.Error("record of a live supervisor: no error")
	}
	self, err := proc.ReadStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	gone := ProcGroup{PGID: 1 << 30}
	write(&RunState{PID: parent, Started: started + 1, Apps: map[string]AppRun{"web": {Groups: []ProcGroup{gone}}}})
	if o, err := FindOrphans(dir, logger); o != nil || err != nil {
		t.Errorf("record of a dead supervisor whose apps are gone: %v, %v", o, err)
	}
	// This test's own process group stands for a live orphan (members never
	// include the caller itself, so only its other members count).
	live := ProcGroup{PGID: self.PGRP}
	write(&RunState{PID: parent, Started: started + 1, Apps: map[string]AppRun{"web": {Groups: []ProcGroup{gone, live}}}})
	o, err := FindOrphans(dir, logger)
	if err != nil {
		t.Fatal(err)
	}
	tree, _ := proc.Scan("")
	if others := len(GroupMembers(tree, live)) - 1; others > 0 && (o == nil || !reflect.DeepEqual(o.Apps(), []string{"web"})) {
		t.Errorf("record with a live group (%d other members): orphans %v", others, o)
	}
}
