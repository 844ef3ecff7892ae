package recovery

import (
	"slices"
	"testing"

	"github.com/gunisup/supervisor/proc"
)

// TestFactsReleases: the gated releases are remembered in order, without
// repeating the last one, at most KeepReleases; Previous is the newest
// other than the serving one; SetReleases (a predecessor's) fills only an
// empty history.
func TestFactsReleases(t *testing.T) {
	for _, tc := range []struct {
		name     string
		restored []string
		gated    []string
		current  string
		want     []string
		previous string
	}{
		{"none", nil, nil, "/r/1", nil, ""},
		{"one", nil, []string{"/r/1"}, "/r/1", []string{"/r/1"}, ""},
		{"deploy", nil, []string{"/r/1", "/r/2"}, "/r/2", []string{"/r/1", "/r/2"}, "/r/1"},
		{"repeat", nil, []string{"/r/1", "/r/1", "/r/2", "/r/2"}, "/r/2", []string{"/r/1", "/r/2"}, "/r/1"},
		{"rolled back", nil, []string{"/r/1", "/r/2", "/r/1"}, "/r/1", []string{"/r/1", "/r/2", "/r/1"}, "/r/2"},
		{"capped", nil, []string{"/r/1", "/r/2", "/r/3", "/r/4", "/r/5", "/r/6"}, "/r/6", []string{"/r/2", "/r/3", "/r/4", "/r/5", "/r/6"}, "/r/5"},
		{"restored", []string{"/r/1", "/r/2"}, []string{"/r/2"}, "/r/2", []string{"/r/1", "/r/2"}, "/r/1"},
		{"empty gated", nil, []string{"", "/r/1"}, "/r/1", []string{"/r/1"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f Facts
			f.SetReleases(tc.restored)
			for _, g := range tc.gated {
				f.SetGated(g)
			}
			if len(f.Of().Releases) > 0 {
				f.SetReleases([]string{"/ignored"}) // a history is never replaced
			}
			if got := f.Of().Releases; !slices.Equal(got, tc.want) {
				t.Errorf("releases %q, want %q", got, tc.want)
			}
			if got := f.Previous(tc.current); got != tc.previous {
				t.Errorf("Previous(%s) = %q, want %q", tc.current, got, tc.previous)
			}
		})
	}
}

// TestStartKeepsPredecessorReleases: a record a clean stop left (releases
// only, another pid) gives the next supervisor its apps' releases and no
// gated release; nothing of it is carried over as processes.
func TestStartKeepsPredecessorReleases(t *testing.T) {
	dir := t.TempDir()
	full := &RunState{PID: 1, Apps: map[string]AppRun{
		"web": {Gated: "/r/2", Releases: []string{"/r/1", "/r/2"}, Groups: []ProcGroup{{PGID: 7}}},
		"job": {Gated: "/j/1"},
	}}
	rest := full.ReleasesOnly()
	if len(rest.Apps) != 1 || !slices.Equal(rest.Apps["web"].Releases, []string{"/r/1", "/r/2"}) || rest.Apps["web"].Gated != "" || rest.Apps["web"].Groups != nil {
		t.Fatalf("ReleasesOnly = %+v", rest)
	}
	if (&RunState{Apps: map[string]AppRun{"job": {Gated: "/j/1"}}}).ReleasesOnly() != nil {
		t.Error("ReleasesOnly of a record without releases is not nil")
	}
	if err := WriteRunState(dir, rest); err != nil {
		t.Fatal(err)
	}
	facts := map[string]*Facts{}
	var r Recorder
	r.Start(dir, nil, func(app string) *Facts {
		facts[app] = &Facts{}
		return facts[app]
	})
	if len(facts) != 1 || facts["web"] == nil || !slices.Equal(facts["web"].Of().Releases, []string{"/r/1", "/r/2"}) {
		t.Fatalf("kept %v, want web's releases", facts)
	}
	if g := facts["web"].Of().Gated; g != "" {
		t.Errorf("web: gated %q from a predecessor's record", g)
	}
	if r.last != nil {
		t.Errorf("the predecessor's record is the base of the next one: %+v", r.last)
	}
}

// TestRecorderWrite: a record is the facts and serving generation of each
// app build adds, with the live groups of the last record carried over and
// its dead ones dropped; nothing is written before Start, and an unchanged
// record is not written again.
func TestRecorderWrite(t *testing.T) {
	dir := t.TempDir()
	serving := startGroup(t)
	gone := ProcGroup{PGID: serving.PGID, Leader: serving.Leader + 1} // a reused pgid
	kept := startGroup(t)
	var facts Facts
	facts.SetGated("/r/1")
	build := func(st *RunState, tree *proc.Tree) {
		st.Apps["web"] = facts.Run(tree, Serving{PID: serving.PGID, Gen: 3, Release: "/r/1", Cgroup: "/sys/fs/cgroup/sup/web"})
	}
	var r Recorder
	if err := r.Write(build); err != nil {
		t.Fatal(err)
	}
	if st, err := ReadRunState(dir); err != nil || st != nil {
		t.Fatalf("record before Start: %+v, %v", st, err)
	}
	prev := &RunState{PID: 1, Apps: map[string]AppRun{"old": {Groups: []ProcGroup{kept, gone}}}}
	r.Start(dir, prev, func(string) *Facts { return &Facts{} })
	if err := r.Write(build); err != nil {
		t.Fatal(err)
	}
	st, err := ReadRunState(dir)
	if err != nil || st == nil {
		t.Fatalf("record after Start: %+v, %v", st, err)
	}
	web := st.Apps["web"]
	if web.Serving == nil || web.Serving.ID != 3 || web.Serving.Group != serving || web.Gated != "/r/1" ||
		!slices.Equal(web.Groups, []ProcGroup{serving}) || !slices.Equal(web.Cgroups, []string{"/sys/fs/cgroup/sup/web"}) {
		t.Errorf("web's record: %+v", web)
	}
	if old := st.Apps["old"]; !slices.Equal(old.Groups, []ProcGroup{kept}) {
		t.Errorf("carried over %+v, want the live group %+v only", old.Groups, kept)
	}
	last := r.last
	if err := r.Write(build); err != nil || r.last != last {
		t.Errorf("an unchanged record was written again (%v)", err)
	}
}
