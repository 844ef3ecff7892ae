package doctor

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/listen/sockdiag"
	"github.com/gunisup/supervisor/listen/steer"
)

// seccompFix is the fix for a system call a seccomp filter denies.
func seccompFix(syscall string) string {
	return "allow " + syscall + "(2) (systemd: add " + syscall + " to SystemCallFilter=; container: a seccomp profile that allows it, or --security-opt seccomp=unconfined)"
}

// probeBPF loads the steering program and attaches it to a listening
// socket on 127.0.0.1:0, as a steered TCP listener does.
func probeBPF(c caps) Result {
	r := Result{Feature: BPFSteering}
	err := steerOnce()
	if err == nil {
		r.Why = "each generation of a TCP listener gets its own socket; a reload switches with one map update"
		return r
	}
	r.State = Degraded
	r.Why = "TCP listeners fall back to one shared socket (mode=shared): " + err.Error()
	switch {
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES):
		if m := c.missing(unix.CAP_BPF); len(m) > 0 && !c.has(unix.CAP_SYS_ADMIN) {
			r.Fix = capFix(m)
		} else if c.filtered() {
			r.Why = "TCP listeners fall back to one shared socket (mode=shared): a seccomp filter denies bpf(2): " + err.Error()
			r.Fix = seccompFix("bpf")
		} else {
			r.Fix = "a security module (SELinux, AppArmor) denies bpf(2) to this process: allow it"
		}
	case errors.Is(err, unix.ENOSYS):
		r.Fix = seccompFix("bpf") + ", or a kernel built with CONFIG_BPF_SYSCALL"
	case errors.Is(err, ebpf.ErrNotSupported) || errors.Is(err, unix.EINVAL):
		r.Fix = "Linux 5.14 or newer (SK_REUSEPORT SELECT_OR_MIGRATE)"
	}
	return r
}

// steerOnce does what a steered TCP listener does, on 127.0.0.1:0: load
// the program, attach it to the holder socket, enrol a listener in the
// socket array and select it.
func steerOnce() error {
	g, err := steer.NewGroup("127.0.0.1:0", 1)
	if err != nil {
		return err
	}
	fd, err := g.Hold()
	if err != nil {
		return errors.Join(err, g.Close())
	}
	defer unix.Close(fd)
	l, err := g.Add()
	if err == nil {
		err = g.Serve(l)
	}
	return errors.Join(err, g.Close())
}

// probeRename binds a Unix socket in a temporary directory (in run_dir
// when cfg is set, where the supervisor keeps its own files) and renames a
// hard link to it over another name, as a reload of a Unix listener does.
func probeRename(cfg *config.Config) Result {
	r := Result{Feature: RenameSteering}
	base := os.TempDir()
	if cfg != nil && cfg.Supervisor.RunDir != "" {
		if _, err := os.Stat(cfg.Supervisor.RunDir); err == nil {
			base = cfg.Supervisor.RunDir
		}
	}
	if err := renameSocket(base); err != nil {
		r.State = Degraded
		r.Why = "a reload of a Unix listener keeps one shared socket: " + err.Error()
		r.Fix = "a writable directory that supports hard links for the socket (systemd: ReadWritePaths= naming it)"
		return r
	}
	r.Why = "a reload of a Unix listener gives the new generation its own socket"
	return r
}

// renameSocket does probeRename's work in a fresh directory under base.
func renameSocket(base string) error {
	dir, err := os.MkdirTemp(base, ".doctor-")
	if err != nil {
		return fmt.Errorf("temporary directory in %s: %w", base, err)
	}
	defer os.RemoveAll(dir)
	gen := filepath.Join(dir, "g1")
	ln, err := net.Listen("unix", gen)
	if err != nil {
		return fmt.Errorf("bind Unix socket %s: %w", gen, err)
	}
	defer ln.Close()
	return steer.SwitchUnix(gen, filepath.Join(dir, "public"))
}

// probeSockDiag dumps the listening Unix sockets over NETLINK_SOCK_DIAG, as
// the queue-depth metric of a Unix listener does.
func probeSockDiag() Result {
	r := Result{Feature: SockDiag}
	if _, err := sockdiag.UnixListenQueues(); err != nil {
		r.State = Degraded
		r.Why = "Unix listeners have no supervisor_listener_queue_* series: " + err.Error()
		switch {
		case errors.Is(err, unix.EAFNOSUPPORT):
			r.Fix = "allow AF_NETLINK sockets (systemd: add AF_NETLINK to RestrictAddressFamilies=)"
		case errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.Is(err, unix.ENOSYS):
			r.Fix = seccompFix("socket") + " for AF_NETLINK"
		default:
			r.Fix = "a kernel with CONFIG_UNIX_DIAG (module unix_diag)"
		}
		return r
	}
	r.Why = "accept-queue depth of Unix listeners"
	return r
}
