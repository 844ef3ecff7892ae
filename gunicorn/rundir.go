package gunicorn

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/safefile"
)

// MakeRunDir makes the run directory of app under runDir
// (config.AppRunDir, where its pidfiles go) exist, owned by the app's uid
// and gid with mode 0750, so that a master running as the app's user can
// write, rename and remove its pidfiles. runDir and its apps/ directory are
// made searchable by others (0755 when created, o+x added otherwise), since
// an app's user must reach its own directory through them. The error names
// the app and the directory.
func MakeRunDir(runDir string, app *config.App) error {
	dir := config.AppRunDir(runDir, app.Name)
	for _, d := range []string{runDir, filepath.Dir(dir)} {
		if err := searchable(d); err != nil {
			return fmt.Errorf("app %s: run directory: %w", app.Name, err)
		}
	}
	if err := os.Mkdir(dir, 0o750); err != nil && !os.IsExist(err) {
		return fmt.Errorf("app %s: run directory: %w", app.Name, err)
	}
	// The owner and mode are set on the directory opened without following
	// a link a user other than root could have made (safefile).
	d, err := safefile.OpenDir(dir, false)
	if err != nil {
		return fmt.Errorf("app %s: run directory: %w", app.Name, err)
	}
	defer func() { _ = d.Close() }() // a directory opened read-only
	id := app.Identity
	if err := unix.Fchown(int(d.Fd()), id.UID, id.GID); err != nil {
		return fmt.Errorf("app %s: run directory %s: chown: %w", app.Name, dir, err)
	}
	if err := unix.Fchmod(int(d.Fd()), 0o750); err != nil {
		return fmt.Errorf("app %s: run directory %s: chmod: %w", app.Name, dir, err)
	}
	return nil
}

// searchable makes directory d exist with mode 0755, or adds o+x to it,
// through a descriptor opened without following a link a user other than
// root could have made.
func searchable(d string) error {
	if err := os.Mkdir(d, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	f, err := safefile.OpenDir(d, false)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // a directory opened read-only
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("stat %s: %w", d, err)
	}
	if st.Mode&0o001 != 0 {
		return nil
	}
	if err := unix.Fchmod(int(f.Fd()), st.Mode&0o7777|0o001); err != nil {
		return fmt.Errorf("add o+x to %s: %w", d, err)
	}
	return nil
}
