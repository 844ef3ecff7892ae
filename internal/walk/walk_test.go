package walk

import (
	"strings"
	"sync"
	"testing"
)

// module is this module, loaded once for the tests (Load builds the export
// data of every dependency).
var module = sync.OnceValues(func() (*Module, error) { return Load("../..") })

// TestEntries walks the config update and the startup of supervise to depth
// 3 and prints the figures; each must stay at or under its ceiling, the
// figures of main recorded in docs/walks.md (at 82b6194, before the
// restructure: update 16 files, 34 folder moves, 17 back up; startup 25
// files, 38 moves, 19 back up).
func TestEntries(t *testing.T) {
	m, err := module()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		entry               string
		files, moves, backs int
	}{
		{"supervise.Manager.Update", 18, 22, 11},
		{"supervise.NewManager", 21, 32, 16},
	} {
		r, err := m.Walk(tc.entry, 3)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %d files, %d folder moves, %d back up\n  %s", r.Entry, len(r.Files), r.Moves, r.BackUp, strings.Join(r.Files, " "))
		if len(r.Files) > tc.files || r.Moves > tc.moves || r.BackUp > tc.backs {
			t.Errorf("%s: %d files, %d moves, %d back up; want at most %d, %d, %d", tc.entry, len(r.Files), r.Moves, r.BackUp, tc.files, tc.moves, tc.backs)
		}
	}
}

// TestUnknownEntry: an entry naming no function is an error naming it.
func TestUnknownEntry(t *testing.T) {
	m, err := module()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"supervise", "supervise.NoSuchFunc", "supervise.Manager.NoSuchMethod"} {
		if _, err := m.Walk(e, 3); err == nil {
			t.Errorf("Walk(%q): no error", e)
		}
	}
}
