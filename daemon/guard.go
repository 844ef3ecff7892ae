package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/control"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/proc"
	"github.com/gunisup/supervisor/recovery"
)

// guardPidfd is the descriptor on which an upgrade guard inherits the
// supervisor's pidfd.
const guardPidfd = 3

// envRestarted carries, into a supervisor that an upgrade guard started
// again, why: it becomes the status's last upgrade ("rolled back: ...").
// envRestartedExe carries the installed binary's path, which the next
// upgrade runs (the guard's own is the kept copy of the previous image).
const (
	envRestarted    = "SUPERVISOR_UPGRADE_RESTARTED"
	envRestartedExe = "SUPERVISOR_UPGRADE_EXE"
)

// Upgrade guard timing: how long the new image must run once it answers
// before the guard leaves, how long the guard waits at most for it to
// answer at all, and how often it looks.
const (
	guardSettle = 5 * time.Second
	guardMax    = 2 * time.Minute
	guardTick   = 100 * time.Millisecond
)

// guarded reports whether a self-upgrade needs a guard: nothing else would
// start the supervisor again if the new image died. Under systemd
// (NOTIFY_SOCKET) Restart= does; as PID 1 the whole PID namespace dies
// with it, the guard included.
func guarded(notifySocket string) bool {
	return os.Getpid() != 1 && notifySocket == ""
}

// startGuard starts `prev upgrade-guard` watching this process through the
// exec that follows, by a pidfd it inherits as fd 3 (so that a new image
// dying at once cannot beat the guard to it): see upgradeGuard. It returns
// the guard's pid, or 0 with the reason it could not start (the upgrade
// goes on unguarded).
func (d *Daemon) startGuard(prev string) (int, error) {
	self, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return 0, fmt.Errorf("upgrade guard: pidfd of the supervisor: %w", err)
	}
	defer unix.Close(self)
	st := d.info()
	sup := d.Config.Supervisor
	argv := []string{prev, "upgrade-guard", "-c", d.Config.Path, "-exe", d.exe, "-socket", sup.ControlSocket, "-run-dir", sup.RunDir,
		"-pid", strconv.Itoa(os.Getpid()), "-upgrades", strconv.Itoa(st.Upgrades), "-last", st.LastUpgrade, "-from", Version}
	pid, _, err := d.reaper.ForkExec(proc.Spec{Argv: argv, Env: os.Environ(), Dir: "/", Files: []int{self}}, 1, 2)
	if err != nil {
		return 0, fmt.Errorf("start upgrade guard %s: %w", prev, err)
	}
	return pid, nil
}

// guardArgs are the flags of `supervisor upgrade-guard`.
type guardArgs struct {
	cfg, exe, socket, runDir, last, from string
	pid, upgrades                        int
}

// runGuard parses `upgrade-guard` flags and runs upgradeGuard.
func runGuard(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("supervisor upgrade-guard", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var g guardArgs
	fs.StringVar(&g.cfg, "c", DefaultConfig, "configuration file")
	fs.StringVar(&g.exe, "exe", "", "the installed binary, which later upgrades run")
	fs.StringVar(&g.socket, "socket", "", "the control socket")
	fs.StringVar(&g.runDir, "run-dir", "", "the run directory (state.json)")
	fs.IntVar(&g.pid, "pid", 0, "the supervisor re-executing")
	fs.IntVar(&g.upgrades, "upgrades", 0, "its upgrade count before")
	fs.StringVar(&g.last, "last", "", "its last upgrade before")
	fs.StringVar(&g.from, "from", "", "its version before")
	if err := fs.Parse(args); err != nil {
		return exitcode.New(ExitConfig, err)
	}
	if g.pid <= 1 || g.socket == "" || g.runDir == "" {
		return exitcode.New(ExitConfig, errors.New("upgrade-guard: -pid, -socket and -run-dir are required"))
	}
	return upgradeGuard(g, slog.New(slog.NewTextHandler(stderr, nil)))
}

// upgradeGuard watches the supervisor g.pid (its parent, through the pidfd
// on guardPidfd) re-execute a new binary; it reads no configuration, so a
// file edited meanwhile cannot stop it. It returns once the new image has answered on the control socket
// (upgrade count or last upgrade changed) and kept running for
// guardSettle, or after guardMax. If the supervisor dies first while
// processes of its apps live on (run_dir/state.json), the guard becomes
// the supervisor again: it re-executes itself (the previous binary) on the
// same configuration, which takes the orphaned apps over (recovery), with
// envRestarted saying why. A supervisor that died with its apps (a
// requested stop) is left dead.
func upgradeGuard(g guardArgs, log *slog.Logger) error {
	if link, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(guardPidfd)); err != nil || link != "anon_inode:[pidfd]" {
		return exitcode.New(ExitConfig, fmt.Errorf("upgrade-guard: fd %d is no pidfd (%q, %v): only an upgrading supervisor starts a guard", guardPidfd, link, err))
	}
	w := control.NewPidWatch(guardPidfd) // inherited from the supervisor (startGuard)
	died := watchUpgrade(g, g.socket, w)
	if err := w.Close(); err != nil || !died { // closed before the exec below: no supervisor inherits it
		return err
	}
	if !appsAlive(g.runDir) {
		log.Info("upgrade-guard: the supervisor exited with its apps: nothing to take over", "pid", g.pid)
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return exitcode.New(ExitFailure, fmt.Errorf("upgrade-guard: %w", err))
	}
	why := fmt.Sprintf("the new binary died after supervisor %d (%s) re-executed it; the previous binary %s was started again as pid %d", g.pid, g.from, exe, os.Getpid())
	log.Error("upgrade-guard: "+why, "config", g.cfg)
	env := append(os.Environ(), envRestarted+"="+why, envRestartedExe+"="+g.exe)
	err = syscall.Exec(exe, []string{exe, "-c", g.cfg}, env)
	return exitcode.New(ExitFailure, fmt.Errorf("upgrade-guard: exec %s: %w", exe, err))
}

// watchUpgrade reports whether the supervisor w watches died before its
// new image had answered on socket and run guardSettle since.
func watchUpgrade(g guardArgs, socket string, w *control.PidWatch) bool {
	c := control.NewClient(socket)
	deadline := time.Now().Add(guardMax)
	var answered time.Time
	for time.Now().Before(deadline) {
		if w.Wait(guardTick) {
			return true
		}
		switch {
		case answered.IsZero():
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			st, err := c.Status(ctx, "")
			cancel()
			if err == nil && st.Supervisor.PID == g.pid && (st.Supervisor.Upgrades != g.upgrades || st.Supervisor.LastUpgrade != g.last) {
				answered = time.Now()
			}
		case time.Since(answered) > guardSettle:
			return false
		}
	}
	return false
}

// appsAlive reports whether a process group recorded in runDir's run state
// still has a member.
func appsAlive(runDir string) bool {
	st, err := recovery.ReadRunState(runDir)
	if err != nil || st == nil {
		return false
	}
	for _, a := range st.Apps {
		for _, g := range a.Groups {
			if g.PGID > 1 && unix.Kill(-g.PGID, 0) == nil {
				return true
			}
		}
	}
	return false
}

// restartedByGuard records, when an upgrade guard started this supervisor
// (envRestarted and envRestartedExe, removed from the environment), why:
// as a rolled-back last upgrade, which `supctl upgrade` waiting on the
// control socket reports; and the installed binary as the one the next
// upgrade runs.
func (d *Daemon) restartedByGuard() error {
	why, ok := os.LookupEnv(envRestarted)
	if !ok {
		return nil
	}
	if exe := os.Getenv(envRestartedExe); exe != "" {
		d.exe = exe
	}
	for _, k := range []string{envRestarted, envRestartedExe} {
		if err := os.Unsetenv(k); err != nil {
			return fmt.Errorf("unset %s: %w", k, err)
		}
	}
	d.lastUpgrade = "rolled back: " + why
	d.Logger.Error("self-upgrade rolled back: the new binary died; this is the previous binary, started again by the upgrade guard", "reason", why)
	return nil
}
