package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/internal/exitcode"
	"github.com/gunisup/supervisor/reload"
	"github.com/gunisup/supervisor/supervise"
)

// envState names the descriptor holding the hand-over state in a re-executed
// image. It is removed from the environment at once: no app inherits it.
const envState = "SUPERVISOR_UPGRADE_STATE"

// upgradeState is everything one image passes to the next.
type upgradeState struct {
	FromVersion  string              `json:"from_version"`
	Config       string              `json:"config"`
	Started      time.Time           `json:"started"`
	Upgrades     int                 `json:"upgrades"`
	NotifySocket string              `json:"notify_socket,omitempty"`
	Watchdog     time.Duration       `json:"watchdog,omitempty"`
	Previous     string              `json:"previous"`
	Exe          string              `json:"exe"`
	Manager      *supervise.Handover `json:"manager"`
	Statsd       map[string]int      `json:"statsd,omitempty"`
	// Fallback is set when the new image could not take over and re-executed
	// the previous binary: it says why.
	Fallback string `json:"fallback,omitempty"`
}

// versionLine is what `supervisor version` prints; the hand-over version
// lets an old image refuse a binary that cannot read its state.
func versionLine() string {
	return fmt.Sprintf("supervisor %s (handover %d)", Version, supervise.HandoverVersion)
}

// executable is the path the running binary was started from (the path a
// package manager installs a new version at).
func executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(exe, " (deleted)"), nil
}

// Upgrade re-executes the supervisor's binary in place: same PID, so every
// app stays its child and it stays PID 1; the held sockets and the running
// generations are handed over through a memfd. Before anything is touched the
// new binary must run (`version`), speak this hand-over format and, in a dry
// run (`upgrade-check`, which loads the configuration as `check` does),
// accept the configuration and the state it is about to be handed; otherwise Upgrade returns an error and nothing
// changed. A copy of the running image is kept so that a new image that
// fails to take over re-executes it. On success Upgrade does not return: the
// process image is replaced (the caller's connection closes).
func (d *Daemon) Upgrade(ctx context.Context, progress reload.Progress) error {
	if !d.upgradeMu.TryLock() {
		return fmt.Errorf("%w: an upgrade is in progress", supervise.ErrBusy)
	}
	defer d.upgradeMu.Unlock()
	exe := d.exe
	progress(fmt.Sprintf("running %s (pid %d); checking new binary %s", Version, os.Getpid(), exe))
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	out, info, err := d.reaper.Output(cctx, []string{exe, "version"}, os.Environ(), "/")
	if err != nil || info.Code != 0 {
		return fmt.Errorf("new binary %s does not start (%v, %s): %s; nothing changed", exe, err, info, firstLine(out))
	}
	newLine := strings.TrimSpace(string(out))
	if !strings.HasSuffix(newLine, fmt.Sprintf("(handover %d)", supervise.HandoverVersion)) {
		return fmt.Errorf("new binary %s reports %q: it cannot take over this supervisor's state (handover %d); nothing changed", exe, newLine, supervise.HandoverVersion)
	}
	// Dry run against the real state: once the process image is replaced,
	// nothing of this one is left to fall back if the new image cannot even
	// run (a script that passes `version`, an older build) or
	// cannot take over (the configuration on disk no longer matches the held
	// listeners: the fallback, reading the same file, could not either).
	// Without it such an upgrade ended the supervisor and orphaned every app
	// (found by test/e2e/upgrade).
	if err := d.dryRun(cctx, exe); err != nil {
		return fmt.Errorf("new binary %s cannot take over: %w; nothing changed", exe, err)
	}
	progress(fmt.Sprintf("new binary: %s", newLine))

	prev := filepath.Join(d.Config.Supervisor.RunDir, "supervisor.previous")
	if err := copySelf(prev); err != nil {
		return fmt.Errorf("keep a copy of the running binary: %w; nothing changed", err)
	}
	hs, thaw, err := d.manager.Freeze(ctx)
	if err != nil {
		return fmt.Errorf("freeze apps: %w; nothing changed", err)
	}
	defer thaw()
	st := upgradeState{
		FromVersion: Version, Config: d.Config.Path, Started: d.started, Upgrades: d.upgrades,
		NotifySocket: d.notifier.Socket(), Previous: prev, Exe: exe, Manager: hs, Statsd: map[string]int{},
	}
	if iv, ok := d.notifier.WatchdogInterval(); ok {
		st.Watchdog = iv
	}
	fds := hs.FDs()
	for app, b := range d.bridges {
		fd, err := b.FD()
		if err != nil {
			return err
		}
		st.Statsd[app] = fd
		fds = append(fds, fd)
	}
	memfd, err := writeState(&st)
	if err != nil {
		return err
	}
	fds = append(fds, memfd)
	progress("re-executing; the connection closes now: supctl reconnects to confirm")
	d.notify(d.notifier.Reloading())
	err = execWith(exe, []string{exe, "-c", d.Config.Path}, fds, memfd)
	unix.Close(memfd)
	d.notify(d.notifier.Ready(summary(d.manager.Snapshots())))
	return fmt.Errorf("re-execute %s: %w; still running %s", exe, err, Version)
}

// dryRun runs `exe upgrade-check` on the state this image would hand over
// now (frozen and thawed at once, written to a file in run_dir). It returns
// nil only if the new binary exits 0 and echoes the state's digest, which
// proves it decoded that state and accepted it with the configuration.
func (d *Daemon) dryRun(ctx context.Context, exe string) error {
	hs, thaw, err := d.manager.Freeze(ctx)
	if err != nil {
		return fmt.Errorf("freeze apps: %w", err)
	}
	thaw()
	b, err := json.Marshal(&upgradeState{FromVersion: Version, Config: d.Config.Path, Started: d.started, Upgrades: d.upgrades, Exe: exe, Manager: hs})
	if err != nil {
		return fmt.Errorf("encode hand-over state: %w", err)
	}
	path := filepath.Join(d.Config.Supervisor.RunDir, "upgrade-check.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err := os.Remove(path); err != nil {
			d.Logger.Warn("upgrade dry run: remove state file", "err", err)
		}
	}()
	out, info, err := d.reaper.Output(ctx, []string{exe, "upgrade-check", "-c", d.Config.Path, "-state", path}, os.Environ(), "/")
	if err != nil || info.Code != 0 {
		return fmt.Errorf("`%s upgrade-check` failed (%v, %s): %s", exe, err, info, strings.TrimSpace(string(out)))
	}
	if want := stateDigest(b); !strings.Contains(string(out), want) {
		return fmt.Errorf("`%s upgrade-check` did not confirm the state (digest %s): %q", exe, want, firstLine(out))
	}
	return nil
}

// stateDigest names a hand-over state in upgrade-check's answer.
func stateDigest(b []byte) string {
	sum := sha256.Sum256(b)
	return "state " + hex.EncodeToString(sum[:8])
}

// upgradeCheck is `supervisor upgrade-check -c CFG -state FILE`: it decodes
// the state a running supervisor wrote and checks, touching no descriptor
// or process, that this binary can take it over with the configuration. It
// prints the state's digest on success; errors carry exit status 2 for a
// bad configuration, 1 otherwise.
func upgradeCheck(cfgPath, statePath string, stdout io.Writer) error {
	if statePath == "" {
		return exitcode.New(ExitConfig, errors.New("upgrade-check needs -state FILE"))
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		return exitcode.New(ExitConfig, err)
	}
	b, err := os.ReadFile(statePath)
	if err != nil {
		return exitcode.New(ExitFailure, fmt.Errorf("hand-over state: %w", err))
	}
	var st upgradeState
	if err := json.Unmarshal(b, &st); err != nil {
		return exitcode.New(ExitFailure, fmt.Errorf("decode hand-over state %s: %w", statePath, err))
	}
	if st.Manager == nil {
		return exitcode.New(ExitFailure, fmt.Errorf("hand-over state %s has no manager state", statePath))
	}
	if err := supervise.ValidateHandover(cfg, st.Manager); err != nil {
		return exitcode.New(ExitFailure, fmt.Errorf("cannot take over with %s: %w", cfg.Path, err))
	}
	fmt.Fprintf(stdout, "%s can take over %d apps from %s (%s)\n", versionLine(), len(st.Manager.Apps), st.FromVersion, stateDigest(b))
	return nil
}

// execWith replaces the process image, keeping fds open across the exec.
// It holds ForkLock so that no child is forked while those fds are
// inheritable. It returns only on failure, with every fd CLOEXEC again.
//
// Stop signals are blocked on the exec'ing thread: the mask survives the
// exec, so a TERM arriving before the new image has installed its handlers
// stays pending (as PID 1 it would be dropped, otherwise it would kill the
// supervisor and orphan every app) and is delivered once it has.
func execWith(exe string, argv []string, fds []int, stateFD int) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var set, old unix.Sigset_t
	for _, sig := range []unix.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGUSR1, unix.SIGUSR2} {
		set.Val[(sig-1)/64] |= 1 << (uint(sig-1) % 64)
	}
	if err := unix.PthreadSigmask(unix.SIG_BLOCK, &set, &old); err != nil {
		return fmt.Errorf("block signals: %w", err)
	}
	defer func() {
		_ = unix.PthreadSigmask(unix.SIG_SETMASK, &old, nil) // restoring the mask just read cannot fail
	}()
	syscall.ForkLock.Lock()
	defer syscall.ForkLock.Unlock()
	restore, err := supervise.ClearCloexec(fds)
	if err != nil {
		return err
	}
	env := append(os.Environ(), envState+"="+strconv.Itoa(stateFD))
	err = syscall.Exec(exe, argv, env)
	restore()
	return err
}

func writeState(st *upgradeState) (int, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return -1, fmt.Errorf("encode hand-over state: %w", err)
	}
	fd, err := unix.MemfdCreate("supervisor-handover", unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd: %w", err)
	}
	if err := writeAllAt(fd, b); err != nil {
		unix.Close(fd)
		return -1, err
	}
	return fd, nil
}

func writeAllAt(fd int, b []byte) error {
	if err := unix.Ftruncate(fd, 0); err != nil {
		return fmt.Errorf("hand-over state: truncate: %w", err)
	}
	for off := 0; off < len(b); {
		n, err := unix.Pwrite(fd, b[off:], int64(off))
		if err != nil {
			return fmt.Errorf("hand-over state: write: %w", err)
		}
		off += n
	}
	return nil
}

// readState reads and removes the hand-over state named by the environment.
// It returns nil when this is a fresh start.
func readState() (*upgradeState, int, error) {
	v, ok := os.LookupEnv(envState)
	if !ok {
		return nil, -1, nil
	}
	if err := os.Unsetenv(envState); err != nil {
		return nil, -1, err
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, -1, fmt.Errorf("%s=%q: not a descriptor", envState, v)
	}
	// Read with pread on the bare descriptor, never through os.NewFile: an
	// *os.File's finalizer closes its descriptor number at some later GC,
	// after Run has closed it and the number was reused (by the control
	// socket: accept then failed with EPERM and the supervisor exited,
	// orphaning every app, a few upgrades in; found by test/e2e/upgrade).
	b, err := preadAll(fd, 64<<20)
	if err != nil {
		return nil, fd, fmt.Errorf("read hand-over state: %w", err)
	}
	var st upgradeState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fd, fmt.Errorf("decode hand-over state: %w", err)
	}
	if st.Manager == nil {
		return nil, fd, errors.New("hand-over state has no manager state")
	}
	return &st, fd, nil
}

// preadAll reads fd from offset 0 to its end, at most limit bytes, without
// taking ownership of it.
func preadAll(fd int, limit int) ([]byte, error) {
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Pread(fd, buf, int64(len(out)))
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("fd %d: %w", fd, err)
		}
		if n == 0 {
			return out, nil
		}
		out = append(out, buf[:n]...)
		if len(out) > limit {
			return nil, fmt.Errorf("fd %d: more than %d bytes", fd, limit)
		}
	}
}

// fallback re-executes the previous binary with the same state after this
// image failed to take over. It returns only if that exec fails.
func fallback(st *upgradeState, stateFD int, cause error) error {
	if st.Fallback != "" || st.Previous == "" {
		return fmt.Errorf("cannot take over the previous image's apps: %w (no fallback left)", cause)
	}
	st.Fallback = fmt.Sprintf("new binary %s could not take over: %v", Version, cause)
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := writeAllAt(stateFD, b); err != nil {
		return err
	}
	fds := append(st.Manager.FDs(), stateFD)
	for _, fd := range st.Statsd {
		fds = append(fds, fd)
	}
	return execWith(st.Previous, []string{st.Previous, "-c", st.Config}, fds, stateFD)
}

// copySelf copies the running image (/proc/self/exe, valid even when the
// file was replaced) to path, mode 0700.
func copySelf(path string) error {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o700)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func firstLine(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}
