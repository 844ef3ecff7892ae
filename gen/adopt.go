package gen

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/contain"
	"github.com/gunisup/supervisor/gunicorn"
	"github.com/gunisup/supervisor/listen"
	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/upgrade"
)

// Adopt wraps generation h of app, which the previous image ran and
// handed over: the reaper adopts its pid (an exit reaped before the
// hand-over froze the reaper reads as code -1), its output and access
// pipes are read again, it counts in its home, and its pidfiles go once
// it exits. stop are the held sockets a Gunicorn master's first stop
// signal goes through (see Generation.Signal; nil for a process).
func (s *Spawner) Adopt(app App, h *upgrade.GenHandover, stop []*listen.Socket) *Generation {
	exitCh := s.Reaper.Adopt(h.PID)
	if _, err := os.Stat("/proc/" + strconv.Itoa(h.PID)); err != nil {
		// Reaped before the hand-over froze the reaper: the status is lost.
		s.Reaper.Forget(h.PID)
		ch := make(chan proc.ExitInfo, 1)
		ch <- proc.ExitInfo{Code: -1, Time: time.Now()}
		close(ch)
		exitCh = ch
	}
	out := s.adoptOutput(app, h)
	var eof <-chan struct{}
	if out != nil {
		eof = out.Done()
	}
	g := newGeneration(app.Cfg.Name, h.ID, h.PID, exitCh, out, eof)
	g.Started, g.Dir, g.ProbeAddr, g.Pidfile, g.FollowsLink, g.PGID = h.Started, h.Dir, h.ProbeAddr, h.Pidfile, h.FollowsLink, h.PGID
	g.home = contain.OfAdopted(app.Cgroup, h.PID)
	s.Homes.Enter(g.home)
	if out != nil {
		g.outFD = fdsOf(out)
	}
	if g.Pidfile != "" {
		s.removePidfilesAtExit(g)
	}
	g.access = s.adoptAccess(app.Cfg, h.AccessFD, h.ID, h.PID, h.Dir)
	g.socks = stop
	return g
}

// adoptOutput captures the output pipes a previous image handed over with
// generation h (nil when it handed over none). A descriptor that cannot be
// adopted is closed and logged: the generation runs on, its output on that
// stream is lost.
func (s *Spawner) adoptOutput(app App, h *upgrade.GenHandover) *logs.Output {
	name := app.Cfg.Name
	return app.Log.AdoptOutput(name, h.ID, h.OutFD, h.ErrFD, func(err error) {
		s.Logger.Error("adopt output pipe", "app", name, "generation", h.ID, "err", err)
	})
}

// ReExec sends USR2 to old's master (a Gunicorn master of app) and finds
// the new master through its pidfile ("<pidfile>.2"); next numbers it. The
// new master is the old one's child until the old one exits, the reaper
// adopts it then. It shares old's output, access pipe, probe listener,
// pidfile, held sockets and home; its process group and release directory
// are read from /proc. Wait for its workers with AwaitBooted.
func (s *Spawner) ReExec(ctx context.Context, app *config.App, old *Generation, next func() int) (*Generation, error) {
	newPID, err := gunicorn.USR2(ctx, gunicorn.Master{PID: old.PID, Pidfile: old.Pidfile, Gone: gone(old), Signal: old.Signal})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", old, err)
	}
	id := next()
	g := adoptGeneration(s.Reaper, old, id, newPID)
	// Forked by the old master: same cgroup and environment, same home.
	g.home = old.home
	s.Homes.Enter(g.home)
	s.removePidfilesAtExit(g)
	s.routeGen(app, id, newPID, g.Dir)
	s.Logger.Info("usr2 master", "app", app.Name, "generation", id, "pid", newPID, "dir", g.Dir)
	return g, nil
}

// AwaitBooted returns nil once g, a USR2 master re-executed from old, runs
// workers workers with the app booted (see gunicorn.AwaitBooted), or an
// error when either exits first, timeout passes or ctx ends.
func (g *Generation) AwaitBooted(ctx context.Context, old *Generation, workers int, timeout time.Duration) error {
	both := func() error { return errors.Join(gone(g)(), gone(old)()) }
	return gunicorn.AwaitBooted(ctx, g.PID, workers, timeout, both)
}

// gone returns a check that fails, naming the exit, once g has exited.
func gone(g *Generation) func() error {
	return func() error {
		if g.Exited() {
			return fmt.Errorf("%s exited: %s", g, g.Exit())
		}
		return nil
	}
}

// adoptGeneration wraps a USR2 master, child of old's master until that
// one exits (see gunicorn.WatchAdopted). It inherits old's output, probe
// listener, pidfile and held sockets; its process group and working
// directory are read from /proc.
func adoptGeneration(r *proc.Reaper, old *Generation, id, pid int) *Generation {
	g := newGeneration(old.App, id, pid, gunicorn.WatchAdopted(r, pid), old.out, nil)
	g.ProbeAddr = old.ProbeAddr
	g.PGID = old.PGID
	g.Pidfile = old.Pidfile
	g.FollowsLink = old.FollowsLink
	g.outFD = old.outFD
	g.access = old.access
	g.socks = old.socks
	if p, err := proc.ReadStat(pid); err == nil {
		g.PGID = p.PGRP
	}
	if dir, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd"); err == nil {
		g.Dir = dir
	}
	return g
}
