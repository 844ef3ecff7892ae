package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
)

// runStateEvery is how often the run state is refreshed (written only when
// it changed): a generation started in between is found by process group
// and cgroup anyway, once its predecessor's record is read.
const runStateEvery = time.Second

// recoverSockets finds a dead predecessor's orphans through run_dir (not
// after a self-upgrade, whose hand-over says everything), points back the
// link of a deploy it left unfinished, and adds the orphans' listening
// sockets to held, for the apps that do not have theirs yet. An app whose
// sockets cannot be taken has its orphans stopped now, so that binding does
// not fail against them; of the others, the processes outside the serving
// generation (a reload's unchecked one) are stopped in the background. It
// returns the orphans (nil: none) for the Manager to adopt or drain, and an
// error when the supervisor that wrote the record still runs.
func (d *Daemon) recoverSockets(held map[string][]*listen.Socket) (*recovery.Orphans, error) {
	o, err := recovery.FindOrphans(d.Config.Supervisor.RunDir, d.Logger)
	if err != nil {
		return nil, exitcode.New(ExitFailure, fmt.Errorf("recovery: %w", err))
	}
	if o == nil {
		return nil, nil
	}
	d.prevRun = o.Prev
	d.Logger.Warn("recovery: the previous supervisor died; taking over its apps", "pid", o.Prev.PID, "apps", o.Apps())
	for name, err := range d.Config.Broken {
		d.Logger.Error("recovery: app set aside: its configuration is invalid; the other apps start", "app", name, "err", err)
	}
	o.RestoreLinks(d.Config)
	systemd := maps.Clone(held)
	taken := o.TakeSockets(d.Config, held)
	for name, socks := range taken {
		held[name] = socks
	}
	for _, name := range o.Apps() {
		app := d.Config.App(name)
		if app == nil {
			continue
		}
		_, ok := taken[name]
		_, inherited := systemd[name]
		if ok || inherited || len(app.Listen) == 0 {
			if app.Kind == config.KindGunicorn {
				o.StopUnchecked(name, app.StopTimeout)
			}
			continue
		}
		if err := o.Drain(name, app.StopTimeout); err != nil {
			d.Logger.Error("recovery", "app", name, "err", err)
		}
	}
	return o, nil
}

// openCgroups creates this supervisor's cgroups (see proc.Cgroups), or
// returns nil, logged, where it cannot.
func (d *Daemon) openCgroups(r *running) *proc.Cgroups {
	cg, err := proc.OpenCgroups("gunisup")
	if err != nil {
		d.Logger.Info("apps run without cgroups: processes are tracked by process group and as child subreaper", "reason", err)
		return nil
	}
	r.onClose(func() {
		if err := cg.Close(5 * time.Second); err != nil {
			d.Logger.Warn("cgroups", "err", err)
		}
	})
	return cg
}

// recordRun writes the first run state before any app starts, so that
// a successor finds this supervisor's cgroups and the orphans it adopted
// even if this one is killed while it starts them.
func (d *Daemon) recordRun() {
	d.manager.RecordRunState(d.prevRun)
	if err := d.manager.WriteRunState(); err != nil {
		d.Logger.Warn("recovery record", "err", err)
	}
}

// startRecovery starts what runs beside the apps for the next supervisor's
// sake: the run state writer, and the drain of the predecessor's orphans
// (o, nil for none) once the new generations are ready.
func (d *Daemon) startRecovery(r *running, o *recovery.Orphans) {
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d.writeRunState(ctx)
	}()
	r.onClose(func() {
		cancel()
		<-done
		d.removeRunState()
	})
	if o != nil {
		go d.manager.DrainOrphans(r.ctx, o, maxStartTimeout(d.Config)+10*time.Second)
	}
}

// writeRunState records the apps in run_dir/state.json now and whenever
// they change (checked every runStateEvery, and whenever the Manager asks),
// until ctx ends.
func (d *Daemon) writeRunState(ctx context.Context) {
	tick := time.NewTicker(runStateEvery)
	defer tick.Stop()
	for {
		if err := d.manager.WriteRunState(); err != nil {
			d.Logger.Warn("recovery record", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-d.manager.RecordPokes():
		}
	}
}

// removeRunState removes run_dir/state.json once no app has a main
// process left (after a clean stop): there is nothing to recover then. The
// apps' remembered releases (for supctl rollback) stay in it, alone.
func (d *Daemon) removeRunState() {
	for _, s := range d.manager.Snapshots() {
		if s.MasterPID != 0 {
			return
		}
	}
	if rest := d.manager.ReleasesState(); rest != nil {
		if err := recovery.WriteRunState(d.Config.Supervisor.RunDir, rest); err != nil {
			d.Logger.Warn("recovery record", "err", err)
		}
		return
	}
	p := filepath.Join(d.Config.Supervisor.RunDir, recovery.RunStateFile)
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		d.Logger.Warn("recovery record", "err", err)
	}
}

// maxStartTimeout is the longest start_timeout of cfg's apps.
func maxStartTimeout(cfg *config.Config) time.Duration {
	var max time.Duration
	for _, app := range cfg.Apps {
		if app.StartTimeout > max {
			max = app.StartTimeout
		}
	}
	return max
}

// configApart is the configuration at path with its broken apps set aside
// (see config.LoadApart), for a supervisor that finds a dead predecessor's
// orphans in the run_dir it names: their other apps must not stay
// unmanaged because of one app's error. It returns nil when the file has
// any other problem, when there is no such predecessor (a plain start with
// a bad configuration starts nothing), or when the predecessor still runs.
func configApart(path string) *config.Config {
	cfg, err := config.LoadApart(path)
	if cfg == nil || err == nil {
		return cfg
	}
	o, ferr := recovery.FindOrphans(cfg.Supervisor.RunDir, slog.New(slog.DiscardHandler))
	if ferr != nil || o == nil {
		return nil
	}
	return cfg
}
