// Package fleet tests the Ansible rollout of contrib/ansible/deploy.yml
// for real: three supervisors on this machine are three inventory hosts
// (local connection, each with its own directory, port and control
// socket), and Debian's ansible-playbook ships a release to each and runs
// `supctl deploy`, one host at a time, while every host is under load.
package fleet

import (
	"testing"

	"github.com/gunisup/supervisor/internal/e2e"
)

func TestMain(m *testing.M) {
	defer e2e.Cleanup()
	m.Run()
}
