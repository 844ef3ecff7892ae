package daemon

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// previousName is the copy of the running image an upgrade keeps in
// run_dir: the binary a new image that fails to take over re-executes.
const previousName = "supervisor.previous"

// previousPath is where d keeps the copy of the running image.
func (d *Daemon) previousPath() string {
	return filepath.Join(d.Config.Supervisor.RunDir, previousName)
}

// removePrevious deletes the kept copy of a previous image once no
// fallback can need it (the supervisor stops: there is no take-over left
// to fail), so that it does not occupy run_dir (a tmpfs) after a stop.
// A missing copy is no error; another is logged.
func (d *Daemon) removePrevious() {
	err := os.Remove(d.previousPath())
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.Logger.Warn("remove the previous image's copy", "err", err)
	}
}
