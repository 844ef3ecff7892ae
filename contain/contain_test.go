package contain

import (
	"io"
	"log/slog"
	"testing"
)

// TestHomesCount: a home is shared while two generations are in it, and
// the last one to leave it is told so (a usr2 pair, then its successor
// alone); a generation without a home is never last.
func TestHomesCount(t *testing.T) {
	hs := &Homes{Managed: func(int) bool { return false }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	h := Home{Mark: homeName(1, 2)}
	hs.Enter(h)
	if hs.Shared(h) {
		t.Fatal("one generation: shared")
	}
	hs.Enter(h)
	if !hs.Shared(h) {
		t.Fatal("two generations: not shared")
	}
	if hs.Leave(h) {
		t.Fatal("first of two left: reported last")
	}
	if !hs.Leave(h) {
		t.Fatal("second of two left: not reported last")
	}
	if hs.Leave(Home{}) {
		t.Fatal("no home: reported last")
	}
}
