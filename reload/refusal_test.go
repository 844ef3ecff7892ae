package reload

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestServingOf(t *testing.T) {
	old, next, other := newGen("old"), newGen("new"), newGen("other")
	for _, tt := range []struct {
		name                    string
		tracked, old, committed Gen
		want                    Serving
	}{
		{"none", nil, old, nil, ServingNone},
		{"old", old, old, nil, ServingOld},
		{"committed", next, old, next, ServingNew},
		{"committed without an old one", next, nil, next, ServingNew},
		{"other", other, old, next, ServingOther},
		{"other before a commit", other, old, nil, ServingOther},
	} {
		if got := ServingOf(tt.tracked, tt.old, tt.committed); got != tt.want {
			t.Errorf("%s: ServingOf = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestCommitRefusal: a run commits unless it was cancelled or the serving
// generation is one it did not make serve.
func TestCommitRefusal(t *testing.T) {
	for _, tt := range []struct {
		name string
		s    Standing
		want string // "": allowed
	}{
		{"replaces its old generation", Standing{Serving: ServingOld}, ""},
		{"old one exited meanwhile", Standing{Serving: ServingNone}, ""},
		{"second commit of a usr2 rollback", Standing{Serving: ServingNew}, ""},
		{"cancelled", Standing{Serving: ServingOld, Cancelled: true}, "app web: reload cancelled by a stop or restart"},
		{"another generation serves", Standing{Serving: ServingOther}, "app web: the serving generation changed during the reload"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.s.App = "web"
			err := tt.s.CommitRefusal()
			if got := errText(err); got != tt.want {
				t.Errorf("CommitRefusal() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestKeepRefusal: a swap's previous generation is kept only with
// keep_previous, for a live run whose new generation serves, outside a
// recovery, with steered listeners; without keep_previous the refusal is
// the one Swap does not show.
func TestKeepRefusal(t *testing.T) {
	ok := Standing{App: "web", Serving: ServingNew, Window: true, Steered: true}
	with := func(f func(*Standing)) Standing { s := ok; f(&s); return s }
	for _, tt := range []struct {
		name   string
		s      Standing
		exited bool
		want   string // "": kept
	}{
		{"kept", ok, false, ""},
		{"no keep_previous", with(func(s *Standing) { s.Window = false }), false, "previous generation not kept: keep_previous is 0"},
		{"cancelled", with(func(s *Standing) { s.Cancelled = true }), false, "app web is stopping or restarting"},
		{"recovery", with(func(s *Standing) { s.Recovery = true }), false, "generation 1 belongs to a previous supervisor"},
		{"old one exited", ok, true, "the serving generation changed during the reload"},
		{"new one exited", with(func(s *Standing) { s.Serving = ServingNone }), false, "the serving generation changed during the reload"},
		{"shared listeners", with(func(s *Standing) { s.Steered = false }), false, "listeners are shared"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.s.KeepRefusal("generation 1", tt.exited)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("KeepRefusal() = %v, want kept", err)
				}
				return
			}
			if !errors.Is(err, errNotKept) || !strings.Contains(errText(err), tt.want) {
				t.Errorf("KeepRefusal() = %v, want errNotKept saying %q", err, tt.want)
			}
			if silent := errors.Is(err, errNoWindow); silent != !tt.s.Window {
				t.Errorf("KeepRefusal() = %v: errNoWindow %v, want %v", err, silent, !tt.s.Window)
			}
		})
	}
}

// keepingHost is fakeHost that keeps a swap's old generation when keep is
// nil, and otherwise refuses with keep.
type keepingHost struct {
	fakeHost
	keep error
}

func (h *keepingHost) Keep(_ context.Context, old Gen) error {
	h.steps = append(h.steps, "keep "+old.String())
	return h.keep
}

// TestSwapKeeps: a kept old generation is not drained; a refused one is,
// with the refusal shown unless it is errNoWindow.
func TestSwapKeeps(t *testing.T) {
	for _, tt := range []struct {
		name      string
		keep      error
		wantSteps []string
		warning   bool
	}{
		{"kept", nil, []string{"spawn ", "ready new", "commit new", "keep old"}, false},
		{"no keep_previous", errNoWindow, []string{"spawn ", "ready new", "commit new", "keep old", "drain old"}, false},
		{"refused", Standing{App: "web", Window: true}.KeepRefusal("old", false), []string{"spawn ", "ready new", "commit new", "keep old", "drain old"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := &keepingHost{keep: tt.keep}
			var phases []string
			if _, err := Swap(context.Background(), h, newGen("old"), func(s string) { phases = append(phases, s) }); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.steps, tt.wantSteps) {
				t.Errorf("steps:\n got %q\nwant %q", h.steps, tt.wantSteps)
			}
			if warned := strings.Contains(strings.Join(phases, "\n"), "warning: draining old"); warned != tt.warning {
				t.Errorf("warning shown %v, want %v: %q", warned, tt.warning, phases)
			}
		})
	}
}

// errText is err's text, "" for nil.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestReExecRefusal: a re-exec's new master is refused only when it runs
// outside the release the link points at.
func TestReExecRefusal(t *testing.T) {
	root := t.TempDir()
	a, b, link := filepath.Join(root, "a"), filepath.Join(root, "b"), filepath.Join(root, "current")
	for _, d := range []string{a, b} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Symlink(a, link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, link, dir string
		want            string // "": allowed
	}{
		{"runs the link's release", link, a, ""},
		{"no link", "", b, ""},
		{"directory unknown", link, "", ""},
		{"link does not resolve", filepath.Join(root, "gone"), b, ""},
		{"runs another release", link, b, "the new master runs in " + b + ", not in " + a + " (where " + link + " points): master 1 was not started from the link"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := errText(ReExecRefusal(tt.link, tt.dir, newGen("master 1")))
			if tt.want == "" && got != "" || !strings.HasPrefix(got, tt.want) {
				t.Errorf("ReExecRefusal = %q, want prefix %q", got, tt.want)
			}
		})
	}
}
