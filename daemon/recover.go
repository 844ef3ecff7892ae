package daemon

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/supervise"
)

// runStateEvery is how often the run state is refreshed (written only when
// it changed): a generation started in between is found by process group
// and cgroup anyway, once its predecessor's record is read.
const runStateEvery = time.Second

// recoverSockets finds a dead predecessor's orphans through run_dir (not
// after a self-upgrade, whose hand-over says everything) and adds their
// listening sockets to held, for the apps that do not have theirs yet. An
// app whose sockets cannot be taken has its orphans stopped now, so that
// binding does not fail against them. It returns the orphans left to drain
// once the new generations are ready (nil: none), and an error when the
// supervisor that wrote the record still runs.
func (d *Daemon) recoverSockets(held map[string][]*listen.Socket) (*supervise.Orphans, error) {
	o, err := supervise.FindOrphans(d.Config.Supervisor.RunDir, d.Logger)
	if err != nil {
		return nil, exitcode.New(ExitFailure, fmt.Errorf("recovery: %w", err))
	}
	if o == nil {
		return nil, nil
	}
	d.prevRun = o.Prev
	d.Logger.Warn("recovery: the previous supervisor died; taking over its apps", "pid", o.Prev.PID, "apps", o.Apps())
	taken := o.TakeSockets(d.Config, held)
	for name, socks := range taken {
		held[name] = socks
	}
	for _, name := range o.Apps() {
		app := d.Config.App(name)
		if _, ok := taken[name]; ok || app == nil || len(app.Listen) == 0 {
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

// startRecovery starts what runs beside the apps for the next supervisor's
// sake: the run state writer, and the drain of the predecessor's orphans
// (o, nil for none) once the new generations are ready.
func (d *Daemon) startRecovery(r *running, o *supervise.Orphans) {
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
// they change (checked every runStateEvery), until ctx ends.
func (d *Daemon) writeRunState(ctx context.Context) {
	prev := d.prevRun
	tick := time.NewTicker(runStateEvery)
	defer tick.Stop()
	for {
		if tree, err := proc.NewTree(""); err == nil {
			st := d.manager.RunState(prev, tree)
			if !reflect.DeepEqual(st, prev) {
				if err := supervise.WriteRunState(d.Config.Supervisor.RunDir, st); err != nil {
					d.Logger.Warn("recovery record", "err", err)
				}
				prev = st
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// removeRunState removes run_dir/state.json once no app has a main
// process left (after a clean stop): there is nothing to recover then.
func (d *Daemon) removeRunState() {
	for _, s := range d.manager.Snapshots() {
		if s.MasterPID != 0 {
			return
		}
	}
	p := filepath.Join(d.Config.Supervisor.RunDir, supervise.RunStateFile)
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
