package supervise

import (
	"strings"
	"testing"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/proc"
)

// TestExecSpecRefusesE2BIG: a start whose environment execve would refuse
// (an env_file grown since check) fails naming the app and the variable,
// before any exec.
func TestExecSpecRefusesE2BIG(t *testing.T) {
	app := &config.App{Name: "web"}
	big := "BIG=" + strings.Repeat("x", config.MaxArgStrlen)
	_, _, err := execSpec(app, proc.Spec{Argv: []string{"/bin/true"}, Env: []string{"A=1", big}}, nil)
	if err == nil || !strings.Contains(err.Error(), "app web: environment variable BIG is") {
		t.Errorf("err = %v, want one naming app web and BIG", err)
	}
	if _, _, err := execSpec(app, proc.Spec{Argv: []string{"/bin/true"}, Env: []string{"A=1"}}, nil); err != nil {
		t.Errorf("small environment: %v", err)
	}
}
