package doctor

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gunisup/supervisor/config"
	"github.com/gunisup/supervisor/proc"
)

// yamaPath holds the Yama LSM's ptrace restriction (absent without Yama).
const yamaPath = "/proc/sys/kernel/yama/ptrace_scope"

// probePidfdGetfd copies one of its own descriptors through pidfd_getfd,
// the call a restarted supervisor takes its dead predecessor's sockets
// with, and checks the ptrace rights that call needs over the orphans:
// they are not its descendants and may run as other users (cfg's apps).
// As PID 1 (pid) the feature is unused: when PID 1 dies the kernel ends
// every process of its namespace, so no successor ever finds orphans, and
// granting what the call needs would buy nothing.
func probePidfdGetfd(c caps, cfg *config.Config, pid int) Result {
	r := Result{Feature: PidfdGetfd}
	if pid == 1 {
		r.State = Unused
		r.Why = "PID 1: when it dies the kernel ends every process of its namespace, leaving no orphans to take over"
		return r
	}
	const degraded = "after the supervisor's death its successor cannot take the apps' sockets: it stops them before binding (an outage): "
	if err := getfdSelf(); err != nil {
		r.State = Degraded
		r.Why = degraded + err.Error()
		r.Fix = getfdFix(c, err)
		return r
	}
	if !c.has(unix.CAP_SYS_PTRACE) {
		if why := ptraceNeed(cfg); why != "" {
			r.State = Degraded
			r.Why = degraded + why + " without CAP_SYS_PTRACE"
			r.Fix = capFix([]string{"CAP_SYS_PTRACE"})
			return r
		}
	}
	r.Why = "a restarted supervisor takes over its predecessor's listening sockets"
	return r
}

// getfdFix is the fix for pidfd_getfd on the process's own descriptor
// failing with err. Docker's default seccomp profile allows the call only
// to a container granted CAP_SYS_PTRACE (the capability recovery needs
// anyway): a filtered EPERM without that capability names it first.
func getfdFix(c caps, err error) string {
	fix := seccompFix("pidfd_getfd") + "; Linux 5.6 or newer"
	if errors.Is(err, unix.EPERM) && c.filtered() && !c.has(unix.CAP_SYS_PTRACE) {
		return capFix([]string{"CAP_SYS_PTRACE"}) + ", with which Docker's default seccomp profile allows pidfd_getfd(2); or " + fix
	}
	return fix
}

// getfdSelf duplicates the process's own pidfd through pidfd_getfd.
func getfdSelf() error {
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return fmt.Errorf("pidfd_open: %w", err)
	}
	defer unix.Close(pidfd)
	fd, err := unix.PidfdGetfd(pidfd, pidfd, 0)
	if err != nil {
		return fmt.Errorf("pidfd_getfd: %w", err)
	}
	unix.Close(fd)
	return nil
}

// ptraceNeed says why pidfd_getfd on orphans would need CAP_SYS_PTRACE
// here ("" when it would not): Yama restricts ptrace to descendants or
// further, or an app runs as a user other than the supervisor's.
func ptraceNeed(cfg *config.Config) string {
	if b, err := os.ReadFile(yamaPath); err == nil {
		if scope := strings.TrimSpace(string(b)); scope != "0" {
			return "kernel.yama.ptrace_scope=" + scope + " restricts ptrace to descendants, which orphans are not,"
		}
	}
	if cfg == nil {
		return ""
	}
	for _, app := range cfg.Apps {
		if app.Identity.Switch() && app.Identity.UID != os.Geteuid() {
			return "app " + app.Name + " runs as uid " + strconv.Itoa(app.Identity.UID) + ", not the supervisor's,"
		}
	}
	return ""
}

// probeCgroup creates and removes a child of the process's own cgroup v2,
// as the supervisor does for each app.
func probeCgroup() Result {
	r := Result{Feature: CgroupDelegation}
	if err := proc.CloneIntoCgroup(); err != nil {
		r.State = Degraded
		r.Why = "apps are tracked by process group and the child subreaper; a daemonising app escapes stop: " + err.Error()
		r.Fix = "let clone3(2) through (systemd: no RestrictNamespaces= line; container: a seccomp profile that allows clone3 (Docker's default one does only with --cap-add=SYS_ADMIN) and a writable /sys/fs/cgroup)"
		return r
	}
	own, err := proc.OwnCgroup()
	if err == nil {
		probe := filepath.Join(own, fmt.Sprintf("gunisup-doctor-%d", os.Getpid()))
		if err = os.Mkdir(probe, 0o755); err == nil {
			err = os.Remove(probe)
		}
	}
	if err != nil {
		r.State = Degraded
		r.Why = "apps are tracked by process group and the child subreaper; a daemonising app escapes stop: " + err.Error()
		switch {
		case errors.Is(err, unix.EROFS):
			r.Fix = "a writable cgroup2 mount (systemd: Delegate=yes without ProtectControlGroups=; container: --cgroupns=private with a writable /sys/fs/cgroup)"
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			r.Fix = "a delegated cgroup (systemd: Delegate=yes; or run as root)"
		default:
			r.Fix = "a cgroup v2 (unified) hierarchy: boot with systemd.unified_cgroup_hierarchy=1"
		}
		return r
	}
	r.Why = "one cgroup per app under " + own
	return r
}

// probeSubreaper makes the process its descendants' subreaper (harmless:
// the supervisor does so at start), unless it is PID 1, which is already.
func probeSubreaper(pid int) Result {
	r := Result{Feature: Subreaper}
	if pid == 1 {
		r.Why = "PID 1: orphans re-parent to the supervisor"
		return r
	}
	if err := proc.SetChildSubreaper(); err != nil {
		r.State = Degraded
		r.Why = "orphaned app processes re-parent to init and are not reaped or counted by the supervisor: " + err.Error()
		r.Fix = seccompFix("prctl")
		return r
	}
	r.Why = "orphaned app processes re-parent to the supervisor"
	return r
}

// probeUsers returns one UserSwitch result per distinct identity of cfg's
// apps that switch user or group: switching needs CAP_SETUID for another
// uid and CAP_SETGID for another group list. It returns one Unused result
// when no app switches.
func probeUsers(c caps, cfg *config.Config) []Result {
	var out []Result
	var seen []string
	if cfg != nil {
		for _, app := range cfg.Apps {
			id := app.Identity
			if !id.Switch() {
				continue
			}
			name := IdentityName(id)
			if slices.Contains(seen, name) {
				continue
			}
			seen = append(seen, name)
			out = append(out, probeUser(c, id, name))
		}
	}
	if len(out) == 0 {
		return []Result{{Feature: UserSwitch, State: Unused, Why: "no app sets user or group"}}
	}
	return out
}

// IdentityName is how a UserSwitch result names id: "user:group" as
// configured (the uid when no user is named).
func IdentityName(id config.Identity) string {
	u, g := id.User, id.Group
	if u == "" {
		u = strconv.Itoa(id.UID)
	}
	if g == "" {
		return u
	}
	return u + ":" + g
}

// probeUser checks the capabilities that switching to id needs.
func probeUser(c caps, id config.Identity, name string) Result {
	r := Result{Feature: UserSwitch, Subject: name}
	var need []int
	if id.UID != os.Geteuid() {
		need = append(need, unix.CAP_SETUID)
	}
	if id.GID != os.Getegid() || len(id.Groups) > 0 {
		need = append(need, unix.CAP_SETGID)
	}
	if m := c.missing(need...); len(m) > 0 {
		r.State = Degraded
		r.Why = fmt.Sprintf("apps with this identity fail to start (uid %d gid %d) without %s", id.UID, id.GID, strings.Join(m, " "))
		r.Fix = capFix(m)
		return r
	}
	r.Why = fmt.Sprintf("uid %d gid %d", id.UID, id.GID)
	return r
}

// probeNotify checks that systemd's notification socket can be reached:
// Unused when the process was not started with NOTIFY_SOCKET.
func probeNotify(socket string) Result {
	r := Result{Feature: SystemdNotify}
	if socket == "" {
		r.State = Unused
		r.Why = "not started by systemd as Type=notify (no NOTIFY_SOCKET)"
		return r
	}
	if err := dialNotify(socket); err != nil {
		r.State = Degraded
		r.Why = "systemd gets no READY=1, STATUS= or WATCHDOG=1: " + err.Error()
		r.Fix = "allow AF_UNIX sockets (systemd: RestrictAddressFamilies= with AF_UNIX) and keep /run/systemd/notify visible"
		return r
	}
	r.Why = "READY=1, STATUS=, RELOADING=1 and WATCHDOG=1 reach " + socket
	return r
}

// dialNotify connects a datagram socket to the notification socket (no
// datagram is sent).
func dialNotify(socket string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket(AF_UNIX): %w", err)
	}
	defer unix.Close(fd)
	// x/sys/unix maps a leading "@" to the abstract namespace.
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: socket}); err != nil {
		return fmt.Errorf("connect %s: %w", socket, err)
	}
	return nil
}
