package upgrade

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// EnvState names the descriptor holding the hand-over state in a re-executed
// image. ReadState removes it from the environment at once: no app inherits it.
const EnvState = "SUPERVISOR_UPGRADE_STATE"

// State is everything one image passes to the next.
type State struct {
	FromVersion  string        `json:"from_version"`
	Config       string        `json:"config"`
	Started      time.Time     `json:"started"`
	Upgrades     int           `json:"upgrades"`
	NotifySocket string        `json:"notify_socket,omitempty"`
	Watchdog     time.Duration `json:"watchdog,omitempty"`
	Previous     string        `json:"previous"`
	Exe          string        `json:"exe"`
	Manager      *Handover     `json:"manager"`
	// Statsd maps an app to the descriptor of its statsd bridge's UDP socket.
	Statsd map[string]int `json:"statsd,omitempty"`
	// Fallback is set when the new image could not take over and re-executed
	// the previous binary: it says why.
	Fallback string `json:"fallback,omitempty"`
	// Features are the optional parts of the hand-over that the image which
	// wrote the state reads back (see Features), so that a fallback to it
	// hands over nothing it would leak.
	Features []string `json:"features,omitempty"`
}

// StatsdFD returns the handed-over statsd socket of app; false when there is
// none (or s is nil: a fresh start).
func (s *State) StatsdFD(app string) (int, bool) {
	if s == nil {
		return 0, false
	}
	fd, ok := s.Statsd[app]
	return fd, ok
}

// FDs lists every descriptor the state refers to.
func (s *State) FDs() []int {
	var fds []int
	if s.Manager != nil {
		fds = s.Manager.FDs()
	}
	for _, fd := range s.Statsd {
		fds = append(fds, fd)
	}
	return fds
}

// FeatureSteer marks a binary that adopts the BPF steering of held TCP
// listeners (SocketHandover.Steer). A binary without it would keep the
// generation sockets and BPF descriptors open unused, and connections the
// kernel steers to them would wait unanswered: it is handed none.
const FeatureSteer = "+steer"

// FeatureSteerUnix marks a binary that adopts the rename steering of held
// Unix listeners (SocketHandover.Rename). A binary without it would keep
// the generation sockets open unused: it is handed only the serving
// socket, which it shares.
const FeatureSteerUnix = "+steer-unix"

// Features returns the optional hand-over parts this binary reads, as its
// `version` line lists them before VersionSuffix.
func Features() []string { return []string{FeatureSteer, FeatureSteerUnix} }

// Fit drops from s what a binary with these features (the fields of its
// `version` line, or a state's Features) would not read back: the BPF
// steering without FeatureSteer, the rename steering without
// FeatureSteerUnix.
func (s *State) Fit(features []string) {
	if s.Manager == nil {
		return
	}
	bpf, rename := slices.Contains(features, FeatureSteer), slices.Contains(features, FeatureSteerUnix)
	for _, socks := range s.Manager.Sockets {
		for i := range socks {
			if !bpf {
				socks[i].Steer = nil
			}
			if !rename {
				socks[i].Rename = nil
			}
		}
	}
}

// VersionSuffix ends the `version` line of a binary that speaks this
// hand-over format; CheckBinary refuses one that does not print it.
func VersionSuffix() string { return fmt.Sprintf("(handover %d)", HandoverVersion) }

// Executable is the path the running binary was started from (the path a
// package manager installs a new version at).
func Executable() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locate own binary: %w", err)
	}
	return strings.TrimSuffix(exe, " (deleted)"), nil
}

// WriteMemfd encodes st into a new CLOEXEC memfd and returns its descriptor.
func WriteMemfd(st *State) (int, error) {
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

// ReadState reads the hand-over state named by EnvState and removes the
// variable. It returns nil and -1 on a fresh start; otherwise the state and
// its descriptor, which the caller closes once it has taken over (or passes
// to Fallback).
func ReadState() (*State, int, error) {
	v, ok := os.LookupEnv(EnvState)
	if !ok {
		return nil, -1, nil
	}
	if err := os.Unsetenv(EnvState); err != nil {
		return nil, -1, fmt.Errorf("unset %s: %w", EnvState, err)
	}
	fd, err := strconv.Atoi(v)
	if err != nil || fd < 3 {
		return nil, -1, fmt.Errorf("%s=%q: not a descriptor", EnvState, v)
	}
	// Read with pread on the bare descriptor, never through os.NewFile: an
	// *os.File's finalizer would close the descriptor number at a later GC,
	// after the caller closed it and the number was reused.
	b, err := preadAll(fd, 64<<20)
	if err != nil {
		return nil, fd, fmt.Errorf("read hand-over state: %w", err)
	}
	var st State
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

// Exec replaces the process image with exe, keeping fds and stateFD open
// across the exec and naming stateFD in EnvState. It holds ForkLock so that
// no child is forked while those fds are inheritable. It returns only on
// failure, with every fd CLOEXEC again.
//
// Stop signals are blocked on the exec'ing thread: the mask survives the
// exec, so a TERM arriving before the new image has installed its handlers
// stays pending (as PID 1 it would be dropped, otherwise it would kill the
// supervisor and orphan every app) and is delivered once it has.
func Exec(exe string, argv []string, fds []int, stateFD int) error {
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
	restore, err := ClearCloexec(append(fds, stateFD))
	if err != nil {
		return err
	}
	env := append(os.Environ(), EnvState+"="+strconv.Itoa(stateFD))
	err = syscall.Exec(exe, argv, env)
	restore()
	return fmt.Errorf("exec %s: %w", exe, err)
}

// ClearCloexec makes fds survive an exec. It returns a func restoring
// CLOEXEC (for a failed exec).
func ClearCloexec(fds []int) (restore func(), err error) {
	var done []int
	restore = func() {
		for _, fd := range done {
			_, _ = unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC) // the fd is ours and open
		}
	}
	for _, fd := range fds {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0); err != nil {
			restore()
			return func() {}, fmt.Errorf("fd %d: clear close-on-exec: %w", fd, err)
		}
		done = append(done, fd)
	}
	return restore, nil
}

// Fallback re-executes the previous binary with the same state after this
// image (version) failed to take over, recording why in the state. It
// returns only if that is impossible (no previous binary, or a fallback
// already happened) or the exec fails.
func Fallback(st *State, stateFD int, version string, cause error) error {
	if st.Fallback != "" || st.Previous == "" {
		return fmt.Errorf("cannot take over the previous image's apps: %w (no fallback left)", cause)
	}
	st.Fallback = fmt.Sprintf("new binary %s could not take over: %v", version, cause)
	st.Fit(st.Features)
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode hand-over state: %w", err)
	}
	if err := writeAllAt(stateFD, b); err != nil {
		return err
	}
	return Exec(st.Previous, []string{st.Previous, "-c", st.Config}, st.FDs(), stateFD)
}

// CopySelf copies the running image (/proc/self/exe, valid even when the
// file was replaced) to path, mode 0700, through a temporary file renamed
// into place.
func CopySelf(path string) error {
	src, err := os.Open("/proc/self/exe")
	if err != nil {
		return fmt.Errorf("open running image: %w", err)
	}
	defer src.Close()
	tmp := path + ".tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o700)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		return errors.Join(fmt.Errorf("copy running image to %s: %w", tmp, err), dst.Close())
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	return nil
}
