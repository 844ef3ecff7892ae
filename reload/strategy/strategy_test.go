package strategy

import (
	"errors"
	"slices"
	"testing"
)

// TestRegistryConsistent: every strategy is described, applies to some
// kind, and points (Instead, Fallback) only at registered strategies valid
// for that kind; each kind has exactly one default.
func TestRegistryConsistent(t *testing.T) {
	defaults := map[string]int{}
	for _, in := range All() {
		if in.Summary == "" || len(in.Kinds) == 0 {
			t.Errorf("%s: Summary and Kinds are required", in.Name)
		}
		for k, alt := range in.Instead {
			if ai, ok := alt.Info(); !ok || !slices.Contains(ai.Kinds, k) || !slices.Contains(in.Kinds, k) {
				t.Errorf("%s: Instead for kind %q is %q, which is not a strategy of that kind", in.Name, k, alt)
			}
		}
		if _, ok := in.Fallback.Info(); in.Fallback != "" && !ok {
			t.Errorf("%s: Fallback %q is not registered", in.Name, in.Fallback)
		}
		for _, k := range in.DefaultFor {
			defaults[k]++
		}
	}
	for _, k := range []string{"gunicorn", "process"} {
		if defaults[k] != 1 {
			t.Errorf("kind %q has %d default strategies, want 1", k, defaults[k])
		}
	}
}

func TestFor(t *testing.T) {
	for _, tc := range []struct {
		name, kind string
		want       Strategy
		err        string
	}{
		{"", "gunicorn", Swap, ""},
		{"", "process", Restart, ""},
		{"swap", "process", Overlap, ""},
		{"usr2", "gunicorn", USR2, ""},
		{"usr2", "process", "", `"usr2" is only valid for kind "gunicorn"`},
		{"overlap", "gunicorn", "", `"overlap" is only valid for kind "process" (a gunicorn app overlaps generations with "swap")`},
		{"rolling", "gunicorn", "", `unknown strategy "rolling" (want ` + Quoted() + `)`},
	} {
		got, err := For(tc.name, tc.kind)
		if got != tc.want || (err == nil) != (tc.err == "") || (err != nil && err.Error() != tc.err) {
			t.Errorf("For(%q, %q) = %q, %v; want %q, %s", tc.name, tc.kind, got, err, tc.want, tc.err)
		}
	}
	if _, err := Parse("rolling"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Parse(rolling) = %v; want ErrUnknown", err)
	}
	if USR2.Fallback() != Swap || Swap.Fallback() != Swap || !USR2.ReExec() || Swap.ReExec() {
		t.Error("usr2 re-executes and falls back to swap; swap neither")
	}
	if !Restart.Exclusive() || Swap.Exclusive() || Overlap.Exclusive() {
		t.Error("restart alone never runs two generations at once")
	}
}
