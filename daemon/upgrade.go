package daemon

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/supervise"
	"github.com/gunisup/supervisor/upgrade"
)

// versionLine is what `supervisor version` prints; the hand-over version
// lets an old image refuse a binary that cannot read its state.
func versionLine() string {
	return fmt.Sprintf("supervisor %s %s %s", Version, strings.Join(upgrade.Features(), " "), upgrade.VersionSuffix())
}

// Upgrade re-executes the supervisor's binary in place: same PID, so every
// app stays its child and it stays PID 1; the held sockets (with the BPF
// steering of TCP listeners: maps, program and generation sockets; and the
// generation sockets of Unix listeners steered by rename) and the running
// generations are handed over through a memfd. Before anything is touched the
// new binary must run (`version`), speak this hand-over format and, in a dry
// run (`upgrade-check`, which loads the configuration as `check` does),
// accept the configuration and the state it is about to be handed; otherwise
// Upgrade returns an error and nothing changed. A copy of the running image
// is kept so that a new image that fails to take over re-executes it. On
// success Upgrade does not return: the process image is replaced (the
// caller's connection closes).
func (d *Daemon) Upgrade(ctx context.Context, progress reload.Progress) error {
	if !d.upgradeMu.TryLock() {
		return fmt.Errorf("%w: an upgrade is in progress", supervise.ErrBusy)
	}
	defer d.upgradeMu.Unlock()
	exe := d.exe
	progress(fmt.Sprintf("running %s (pid %d); checking new binary %s", Version, os.Getpid(), exe))
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	newLine, err := upgrade.CheckBinary(cctx, d.reaper, exe)
	if err != nil {
		return fmt.Errorf("%w; nothing changed", err)
	}
	// Dry run against the real state: once the process image is replaced,
	// nothing of this one is left to fall back on if the new image cannot
	// run or cannot take over (the configuration on disk no longer matches
	// the held listeners: the fallback, reading the same file, could not
	// either), and every app would be orphaned.
	if err := d.dryRun(cctx, exe, newLine); err != nil {
		return fmt.Errorf("new binary %s cannot take over: %w; nothing changed", exe, err)
	}
	progress(fmt.Sprintf("new binary: %s", newLine))

	prev := d.previousPath()
	if err := upgrade.CopySelf(prev); err != nil {
		return fmt.Errorf("keep a copy of the running binary: %w; nothing changed", err)
	}
	// The guard starts before the freeze, which holds the reaper (and so
	// every fork) still; it is ended on every way out but the exec.
	if guard := d.guard(prev, progress); guard > 0 {
		defer func() {
			_ = unix.Kill(guard, unix.SIGTERM) // this image runs on: nothing to guard; it may be gone
		}()
	}
	hs, thaw, err := d.manager.Freeze(ctx)
	if err != nil {
		return fmt.Errorf("freeze apps: %w; nothing changed", err)
	}
	defer thaw()
	st := d.upgradeState(exe, hs, newLine)
	st.Previous = prev
	st.NotifySocket = d.notifier.Socket()
	if iv, ok := d.notifier.WatchdogInterval(); ok {
		st.Watchdog = iv
	}
	d.bridgesMu.Lock()
	for app, b := range d.bridges {
		fd, err := b.FD()
		if err != nil {
			d.bridgesMu.Unlock()
			return err
		}
		st.Statsd[app] = fd
	}
	d.bridgesMu.Unlock()
	memfd, err := upgrade.WriteMemfd(st)
	if err != nil {
		return err
	}
	progress("re-executing; the connection closes now: supctl reconnects to confirm")
	d.notify(d.notifier.Reloading())
	err = upgrade.Exec(exe, []string{exe, "-c", d.Config.Path}, st.FDs(), memfd)
	unix.Close(memfd)
	d.notify(d.notifier.Ready(summary(d.manager.Snapshots())))
	return fmt.Errorf("re-execute %s: %w; still running %s", exe, err, Version)
}

// upgradeState is the state this image hands to exe, whose `version` line
// is line, around the manager's frozen state hs: without the parts exe
// would not read (see upgrade.State.Fit).
func (d *Daemon) upgradeState(exe string, hs *upgrade.Handover, line string) *upgrade.State {
	st := &upgrade.State{FromVersion: Version, Config: d.Config.Path, Started: d.started, Upgrades: d.upgrades, Exe: exe, Manager: hs,
		Statsd: map[string]int{}, Features: upgrade.Features()}
	st.Fit(strings.Fields(line))
	return st
}

// dryRun has exe (whose `version` line is line) check the state this
// image would hand over at the moment of the call (frozen and thawed at
// once); see upgrade.DryRun.
func (d *Daemon) dryRun(ctx context.Context, exe, line string) error {
	hs, thaw, err := d.manager.Freeze(ctx)
	if err != nil {
		return fmt.Errorf("freeze apps: %w", err)
	}
	thaw()
	return upgrade.DryRun(ctx, d.reaper, exe, d.Config.Supervisor.RunDir, d.upgradeState(exe, hs, line))
}

// upgradeCheck is `supervisor upgrade-check -c CFG -state FILE` (see
// upgrade.Check): it prints the state's digest on success; errors carry exit
// status 2 for a bad configuration, 1 otherwise.
func upgradeCheck(cfgPath, statePath string, stdout io.Writer) error {
	line, err := upgrade.Check(cfgPath, statePath, versionLine())
	switch {
	case errors.Is(err, upgrade.ErrConfig):
		return exitcode.New(ExitConfig, err)
	case err != nil:
		return exitcode.New(ExitFailure, err)
	}
	_, err = fmt.Fprintln(stdout, line)
	return err
}

// guard starts an upgrade guard (see upgradeGuard) from prev where nothing
// else would start the supervisor again should the new image die, and
// returns its pid (0: none). A guard that cannot start is reported, and
// the upgrade goes on without.
func (d *Daemon) guard(prev string, progress reload.Progress) int {
	if !guarded(d.notifier.Socket()) {
		return 0
	}
	pid, err := d.startGuard(prev)
	if err != nil {
		progress(fmt.Sprintf("warning: %v; the upgrade goes on unguarded", err))
		return 0
	}
	progress(fmt.Sprintf("guard %d (the previous binary) starts it again if the new image dies", pid))
	return pid
}
