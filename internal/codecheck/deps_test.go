package codecheck

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

// supctlForbidden are the module's packages supctl must not link: it talks
// to the supervisor through control only, and reads shared facts (such as
// the reload strategies of reload/strategy) from leaf packages.
var supctlForbidden = []string{"config", "daemon", "gunicorn", "health", "listen", "logs", "metrics", "proc", "reload", "status", "supervise", "upgrade"}

// TestSupctlLinksNoSupervisor: `go list -deps ./cmd/supctl` names none of
// supctlForbidden.
func TestSupctlLinksNoSupervisor(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "list", "-deps", "-f", "{{.ImportPath}}", "./cmd/supctl")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps ./cmd/supctl: %v", err)
	}
	const module = "github.com/gunisup/supervisor/"
	for _, p := range strings.Fields(string(out)) {
		rel, ok := strings.CutPrefix(p, module)
		if ok && slices.Contains(supctlForbidden, rel) {
			t.Errorf("supctl links %s", p)
		}
	}
}
