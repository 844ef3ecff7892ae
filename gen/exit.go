package gen

import (
	"errors"
	"syscall"
	"time"

	"github.com/gunisup/supervisor/logs"
	"github.com/gunisup/supervisor/proc"
)

// Finish tidies up once g's main process has exited: it records an
// unexpected exit in log, its app's log (the app's status then shows g's
// traceback, and a warning names the exit), ends g's route metrics and
// counts g out of its home. When g was the last generation in its home
// (see contain.Home), the processes it detached are SIGKILLed before
// Finish returns (a later generation never meets them); its process
// group's leftovers get SIGTERM and stopTimeout in the background (see
// EndGroup), and then the home is closed (its leaf cgroup killed and
// removed).
//
// Every call returns once the first has ended the strays (the owner and a
// reload may both see one exit), and only the first closes the home.
func (s *Spawner) Finish(g *Generation, log *logs.AppLog, stopTimeout time.Duration) {
	noteExit(g, log, s.Logger)
	s.endRouteGen(g.App, g.ID)
	last := false
	g.leaving.Do(func() {
		last = s.Homes.Leave(g.home)
		if last {
			s.Homes.EndDetached(g.App, g.ID, g.PGID, g.home)
		}
	})
	go func() {
		s.EndGroup(g, stopTimeout)
		if last {
			s.Homes.Close(g.App, g.home)
		}
	}()
}

// EndGroup ends the processes g left behind in its process group when
// its main process exited (Gunicorn workers of a master killed with -9):
// children of the supervisor the reaper does not manage. They get TERM
// (a worker finishes the request in hand), then KILL after timeout; it
// returns when none is left (survivors of the KILL are logged).
func (s *Spawner) EndGroup(g *Generation, timeout time.Duration) {
	if g.PGID == 0 {
		return
	}
	if err := syscall.Kill(-g.PGID, 0); errors.Is(err, syscall.ESRCH) {
		return // the group is empty: nothing to scan /proc for
	}
	find := func() []int {
		return proc.OwnChildren(func(pid, pgid int) bool { return pgid == g.PGID && !s.Reaper.Managed(pid) })
	}
	left := find()
	if len(left) == 0 {
		return
	}
	s.Logger.Info("ending processes left by exited generation", "app", g.App, "generation", g.ID, "pids", left)
	if left := proc.Terminate(find, timeout, 100*time.Millisecond); len(left) > 0 {
		s.Logger.Error("processes left by exited generation survived SIGKILL", "app", g.App, "generation", g.ID, "pids", left)
	}
}

// EndDetached ends the processes g detached from its process group
// (setsid daemons) while its main process may still drain, unless g
// shares its home with a live generation (a USR2 pair's are left to the
// pair's end).
func (s *Spawner) EndDetached(g *Generation) {
	if !s.Homes.Shared(g.home) {
		s.Homes.EndDetached(g.App, g.ID, g.PGID, g.home)
	}
}
