package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// Tmpfs makes directory dir and mounts a tmpfs of size (mount's size=,
// such as "64k") on it, unmounted when t ends. It skips t where the mount
// is not allowed (not root).
func Tmpfs(t testing.TB, dir, size string) {
	t.Helper()
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
}
