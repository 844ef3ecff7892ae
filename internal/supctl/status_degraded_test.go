package supctl

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/control"
)

// TestPrintDegraded: a header line per degraded feature with why and fix;
// nothing at all when every feature works.
func TestPrintDegraded(t *testing.T) {
	var b bytes.Buffer
	PrintDegraded(&b, nil)
	if b.Len() != 0 {
		t.Errorf("no degraded feature printed %q", b.String())
	}
	PrintDegraded(&b, []control.Feature{{Name: "bpf_steering", Why: "no CAP_BPF", Fix: "grant CAP_BPF"}})
	if want := "degraded: bpf_steering: no CAP_BPF; fix: grant CAP_BPF\n"; !strings.HasPrefix(b.String(), want) {
		t.Errorf("PrintDegraded = %q, want it to start %q", b.String(), want)
	}
}
