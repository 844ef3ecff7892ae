package supervise

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/safefile"
	"github.com/gunisup/supervisor/proc"
)

// credential is the uid, gid and supplementary groups app's processes take
// before exec, or nil when the app runs as the supervisor's own user.
func credential(app *config.App) *syscall.Credential {
	id := app.Identity
	if !id.Switch() {
		return nil
	}
	groups := make([]uint32, len(id.Groups))
	for i, g := range id.Groups {
		groups[i] = uint32(g)
	}
	return &syscall.Credential{Uid: uint32(id.UID), Gid: uint32(id.GID), Groups: groups}
}

// attrs are app's umask, nice, oom_score_adjust and rlimits for proc.
func attrs(app *config.App) proc.Attrs {
	l := app.Limits
	a := proc.Attrs{Umask: l.Umask, Nice: l.Nice, OOMScoreAdj: l.OOMScoreAdj}
	for _, r := range l.Rlimits {
		a.Rlimits = append(a.Rlimits, proc.Rlimit{Resource: r.Resource, Value: r.Value})
	}
	return a
}

// probeAs is how a probe of app's virtualenv runs: as the app itself would,
// with env, in dir, under its credentials and attributes.
func probeAs(app *config.App, env []string, dir string) proc.Spec {
	return proc.Spec{Env: env, Dir: dir, Cred: credential(app), Attrs: attrs(app)}
}

// runAs gives spec app's credentials and attributes and, for a Gunicorn
// app, makes its run directory (config.AppRunDir, where its pidfile goes)
// exist, owned by the app's uid and gid with mode 0750, so that a master
// running as the app's user can write, rename and remove its pidfiles.
// run_dir and its apps/ directory are made searchable by others (0755 when
// created, o+x added otherwise), since an app's user must reach its own
// directory through them.
func (m *Manager) runAs(app *config.App, spec *proc.Spec) error {
	spec.Cred = credential(app)
	spec.Attrs = attrs(app)
	if app.Kind != config.KindGunicorn {
		return nil
	}
	dir := config.AppRunDir(m.runDir, app.Name)
	for _, d := range []string{m.runDir, filepath.Dir(dir)} {
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
