package contrib_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v2"

	"github.com/gunisup/supervisor/internal/testenv"
)

// TestAnsibleSyntax runs `ansible-playbook --syntax-check` on the rollout
// playbook with the example inventory (test/e2e/fleet runs it for real),
// and checks the play keeps the properties a safe rollout rests on: one
// host at a time, and no failure tolerated.
func TestAnsibleSyntax(t *testing.T) {
	bin := testenv.Tool(t, "ansible-playbook", "ansible-core")
	tmp := t.TempDir()
	cmd := exec.Command(bin, "-i", "inventory.example.ini", "--syntax-check", "deploy.yml")
	cmd.Dir = "ansible"
	cmd.Env = append(os.Environ(), "ANSIBLE_HOME="+tmp, "ANSIBLE_LOCAL_TEMP="+tmp, "ANSIBLE_NOCOLOR=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.Contains(string(out), "WARNING") {
		t.Fatalf("ansible-playbook --syntax-check deploy.yml: %v\n%s", err, out)
	}

	raw, err := os.ReadFile(filepath.Join("ansible", "deploy.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var plays []map[string]any
	if err := yaml.Unmarshal(raw, &plays); err != nil {
		t.Fatalf("ansible/deploy.yml: %v", err)
	}
	if len(plays) != 1 {
		t.Fatalf("ansible/deploy.yml: %d plays, want 1", len(plays))
	}
	for key, want := range map[string]any{"serial": 1, "max_fail_percentage": 0} {
		if got := plays[0][key]; got != want {
			t.Errorf("ansible/deploy.yml: %s is %v, want %v", key, got, want)
		}
	}
}
