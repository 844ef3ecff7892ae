package launch

import (
	"strings"
	"testing"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/proc"
)

// TestSpecRefusesE2BIG: a spec whose environment execve would refuse (an
// env_file grown since check) fails naming the app and the variable, before
// any exec.
func TestSpecRefusesE2BIG(t *testing.T) {
	app := &config.App{Name: "web"}
	big := "BIG=" + strings.Repeat("x", config.MaxArgStrlen)
	_, err := fits(app, proc.Spec{Argv: []string{"/bin/true"}, Env: []string{"A=1", big}})
	if err == nil || !strings.Contains(err.Error(), "app web: environment variable BIG is") {
		t.Errorf("err = %v, want one naming app web and BIG", err)
	}
	if _, err := fits(app, proc.Spec{Argv: []string{"/bin/true"}, Env: []string{"A=1"}}); err != nil {
		t.Errorf("small environment: %v", err)
	}
}
