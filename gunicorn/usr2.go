package gunicorn

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/proc"
)

// Master is a running Gunicorn master as the USR2 dance needs it.
type Master struct {
	PID     int
	Pidfile string
	// Gone returns a non-nil error (naming the exit) once the master exited.
	Gone func() error
	// Signal sends a signal to the master.
	Signal func(syscall.Signal) error
}

// USR2 waits until old owns its pidfile (a master refuses USR2 until it has
// promoted itself), sends it USR2, and returns the PID of the new master:
// the old one's child that wrote "<pidfile>.2". It fails when old exits or
// ctx ends first.
func USR2(ctx context.Context, old Master) (int, error) {
	if err := PollUntil(ctx, 20*time.Millisecond, func() (bool, error) {
		if err := old.Gone(); err != nil {
			return false, err
		}
		pid, err := ReadPidfile(old.Pidfile)
		return err == nil && pid == old.PID, nil
	}); err != nil {
		return 0, fmt.Errorf("waiting for pid %d to own %s: %w", old.PID, old.Pidfile, err)
	}
	next := old.Pidfile + ".2"
	if err := os.Remove(next); err != nil && !errors.Is(err, os.ErrNotExist) {
		return 0, fmt.Errorf("remove stale %s: %w", next, err)
	}
	if err := old.Signal(syscall.SIGUSR2); err != nil {
		return 0, err
	}
	var newPID int
	if err := PollUntil(ctx, 20*time.Millisecond, func() (bool, error) {
		if err := old.Gone(); err != nil {
			return false, err
		}
		pid, err := ReadPidfile(next)
		if err != nil {
			return false, nil
		}
		if st, err := proc.ReadStat(pid); err != nil || st.PPID != old.PID {
			return false, nil
		}
		newPID = pid
		return true, nil
	}); err != nil {
		return 0, fmt.Errorf("no new master appeared: %w", err)
	}
	return newPID, nil
}

// AwaitBooted polls until master runs at least want workers (any number
// when want is 0) and every one of them has booted the app. gone is checked
// each round and ends the wait with its error. When ctx's deadline (the
// reload timeout, named in the error) passes the error says how many
// workers booted.
func AwaitBooted(ctx context.Context, master, want int, timeout time.Duration, gone func() error) error {
	err := PollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		if err := gone(); err != nil {
			return false, err
		}
		booted, total := Booted(master)
		return total > 0 && booted == total && (want == 0 || total >= want), nil
	})
	if errors.Is(err, context.DeadlineExceeded) {
		booted, total := Booted(master)
		return fmt.Errorf("%d of %d workers booted the app within the reload timeout %s: %w", booted, total, timeout, err)
	}
	return err
}

// Booted counts a master's workers and how many of them have booted the
// app. Each worker has a heartbeat file ("wgunicorn-*", unlinked) that the
// master holds too; a worker touches it first when its request loop starts,
// after the app was imported: Gunicorn 20 flips the file's mode from 0600 to
// 0 or 1 (fchmod), newer versions set its mtime to the monotonic clock (a
// date in 1970). Either change means booted.
func Booted(master int) (booted, total int) {
	dir := "/proc/" + strconv.Itoa(master) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0
	}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil || !strings.Contains(link, "wgunicorn-") {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(dir, e.Name()), &st); err != nil {
			continue
		}
		total++
		if st.Mode&0o777 <= 1 || st.Mtim.Sec < 946684800 { // 2000-01-01
			booted++
		}
	}
	return booted, total
}

// WatchAdopted returns a channel that yields the exit of a master created
// by USR2, then closes. Its exit reaches the supervisor's reaper once it has
// re-parented to the supervisor; while it is still the old master's child,
// the old master reaps it, so its disappearance is polled too and reported
// as exit -1.
func WatchAdopted(r *proc.Reaper, pid int) <-chan proc.ExitInfo {
	exitCh := r.Adopt(pid)
	merged := make(chan proc.ExitInfo, 1)
	go func() {
		defer close(merged)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case info, ok := <-exitCh:
				if ok {
					merged <- info
				}
				return
			case <-tick.C:
				if proc.Alive(pid) {
					continue
				}
				merged <- lastExit(r, pid, exitCh)
				return
			}
		}
	}()
	return merged
}

// lastExit gives the reaper a moment to deliver the exit of pid, gone from
// /proc, in case it was ours to reap; otherwise it forgets pid.
func lastExit(r *proc.Reaper, pid int, exitCh <-chan proc.ExitInfo) proc.ExitInfo {
	t := time.NewTimer(300 * time.Millisecond)
	defer t.Stop()
	select {
	case info, ok := <-exitCh:
		if ok {
			return info
		}
	case <-t.C:
	}
	r.Forget(pid)
	return proc.ExitInfo{Code: -1, Time: time.Now()}
}

// ReadPidfile reads the PID a master wrote to path.
func ReadPidfile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("pidfile %s: %w", path, err)
	}
	return pid, nil
}

// RemovePidfiles removes the pidfile of a master that has exited, pid,
// and its USR2 name "<pidfile>.2", each only where it still names pid (a
// master promoted since writes its own pid there). Gunicorn removes its
// pidfile on a clean exit the same way, but a killed or crashed master leaves
// it behind. A file already gone is not an error.
func RemovePidfiles(pidfile string, pid int) error {
	var errs []error
	for _, p := range []string{pidfile, pidfile + ".2"} {
		got, err := ReadPidfile(p)
		var garbled *strconv.NumError
		if errors.Is(err, fs.ErrNotExist) || errors.As(err, &garbled) || (err == nil && got != pid) {
			continue // not pid's
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove pidfile of exited pid %d: %w", pid, err))
		}
	}
	return errors.Join(errs...)
}

// RemovePidfilesIn removes the pidfiles in dir ("*.pid" and their USR2
// names) that name one of pids, masters that have exited (see
// RemovePidfiles): those a killed supervisor's orphans leave behind.
func RemovePidfilesIn(dir string, pids []int) error {
	paths, err := filepath.Glob(filepath.Join(dir, "*.pid"))
	if err != nil {
		return fmt.Errorf("pidfiles in %s: %w", dir, err)
	}
	var errs []error
	for _, p := range paths {
		for _, pid := range pids {
			errs = append(errs, RemovePidfiles(p, pid))
		}
	}
	return errors.Join(errs...)
}

// PollUntil calls cond every interval until it returns true or an error, or
// ctx ends (then it returns context.Cause(ctx): what cancelled it, or the
// deadline).
func PollUntil(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// UnlinksOnStop reports whether the master pid, stopping now, removes its
// Unix sockets' bound names. A master does not while it is part of a USR2
// pair: a new master not yet promoted (its parent is still the old master,
// not the calling supervisor) or an old master whose new master (named in
// "<pidfile>.2") still runs as its child. A master already gone removes
// nothing.
func UnlinksOnStop(pid int, pidfile string) bool {
	st, err := proc.ReadStat(pid)
	if err != nil || st.State == "Z" || st.PPID != os.Getpid() {
		return false
	}
	child, err := ReadPidfile(pidfile + ".2")
	if err != nil || child == pid {
		return true
	}
	cs, err := proc.ReadStat(child)
	return err != nil || cs.PPID != pid || cs.State == "Z"
}
