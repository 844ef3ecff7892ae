package steer

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// SwitchUnix makes publicPath name the Unix socket bound at genPath: it
// hard-links genPath to a fresh hidden name beside publicPath and renames
// that link over publicPath. rename(2) replaces the name atomically, so a
// connect(2) to publicPath reaches the previous socket or the new one, never
// nothing. Connections already queued on the previous socket stay with it.
// Both paths must be on one filesystem; on error publicPath is unchanged.
func SwitchUnix(genPath, publicPath string) error {
	tmp := filepath.Join(filepath.Dir(publicPath),
		fmt.Sprintf(".%s.switch-%016x", filepath.Base(publicPath), rand.Uint64()))
	if err := os.Link(genPath, tmp); err != nil {
		return fmt.Errorf("steer: link %s for %s: %w", genPath, publicPath, err)
	}
	if err := os.Rename(tmp, publicPath); err != nil {
		_ = os.Remove(tmp) // the rename error is the one to report
		return fmt.Errorf("steer: rename %s over %s: %w", tmp, publicPath, err)
	}
	return nil
}
