package e2e

import (
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// PidfilesNaming lists the pidfiles (*.pid, *.pid.2) anywhere under the
// supervisor's run_dir (Dir/run, as Config writes it) that hold pid. A
// file that vanishes while it walks is left out.
func (s *Supervisor) PidfilesNaming(pid int) []string {
	s.t.Helper()
	var found []string
	root := filepath.Join(s.Dir, "run")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // removed while walking
			}
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".pid") || strings.HasSuffix(path, ".pid.2")) {
			return nil
		}
		if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(pid) {
			found = append(found, path)
		}
		return nil
	})
	if err != nil {
		s.t.Fatalf("e2e: walking %s: %v", root, err)
	}
	return found
}
