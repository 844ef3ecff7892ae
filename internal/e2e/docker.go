package e2e

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
	"github.com/gunisup/supervisor/proc"
)

// DockerCaps is Docker's default capability set (the 14 that moby grants a
// container unless told otherwise), in setpriv's --bounding-set syntax.
const DockerCaps = "-all,+chown,+dac_override,+fsetid,+fowner,+mknod,+net_raw,+setgid,+setuid,+setfcap,+setpcap,+net_bind_service,+sys_chroot,+kill,+audit_write"

// DockerCapMask is DockerCaps as the bit mask of /proc/PID/status's
// CapBnd, CapPrm and CapEff lines.
const DockerCapMask = "00000000a80425fb"

// containerScript (container.sh CGROUP CAPS SECCOMPEXEC CMD [ARG...]) runs
// CMD as Docker's default runtime (runc) runs a container's entrypoint on
// a cgroup v2 host: CMD is PID 1 of new PID, mount, cgroup, UTS and IPC
// namespaces, in CGROUP, which is the root of its cgroup namespace; sysfs
// and the cgroup2 file system (showing CGROUP as /) are mounted read-only,
// as for a container that is not --privileged; /proc is its namespace's,
// with Docker's read-only and masked paths; the capability bounding,
// permitted and effective sets are CAPS and the inheritable set empty;
// no_new_privs is set, and SECCOMPEXEC applies the default seccomp profile
// before executing CMD.
const containerScript = `set -eu
if [ "${CONTAINER_SH_INSIDE:-}" != 1 ]; then
	echo $$ >"$1/cgroup.procs"
	CONTAINER_SH_INSIDE=1 exec unshare --pid --fork --mount --cgroup --uts --ipc --mount-proc --propagation private /bin/sh "$0" "$@"
fi
unset CONTAINER_SH_INSIDE
caps=$2 seccompexec=$3
shift 3
umount -R /sys
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
mount -t cgroup2 -o ro,nosuid,nodev,noexec cgroup /sys/fs/cgroup
for p in /proc/bus /proc/fs /proc/irq /proc/sys /proc/sysrq-trigger; do
	[ -e "$p" ] || continue
	mount --bind "$p" "$p"
	mount -o remount,bind,ro "$p"
done
for p in /proc/asound /proc/acpi /proc/interrupts /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list \
	/proc/timer_stats /proc/sched_debug /proc/scsi /sys/firmware /sys/devices/virtual/powercap; do
	if [ -d "$p" ]; then
		mount -t tmpfs -o ro tmpfs "$p"
	elif [ -e "$p" ]; then
		mount --bind /dev/null "$p"
	fi
done
hostname gunisup-container
exec setpriv --bounding-set="$caps" --inh-caps=-all --no-new-privs "$seccompexec" "$@"
`

// DockerLike returns an Options.Wrap that runs the supervisor the way
// Docker's default runtime would (see containerScript), with capAdd (setpriv
// names such as "bpf", as `docker run --cap-add`) added to Docker's
// default capabilities and to what its seccomp profile allows, in a new cgroup
// below the test's own cgroup v2, which t's cleanup removes once the
// supervisor is gone (killing what is left in it first, and failing t
// then). It skips t when not root, without a cgroup v2, or off x86_64 (the
// seccomp filter is written for it).
//
// Not emulated: the container's network namespace (the supervisor serves
// on the host's loopback, where the load generator reaches it), its own
// root file system and /dev, the AppArmor profile docker-default, user
// namespace remapping (off by default in Docker too). The cgroup setup is
// Docker's on a cgroup v2 host (cgroupns=private, its default there) even
// on a hybrid host, where Docker would use the v1 hierarchies and the
// host's cgroup namespace: the container's cgroup is made in the v2
// hierarchy the test runs in.
func DockerLike(t testing.TB, capAdd ...string) []string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: namespaces, mounts, cgroups")
	}
	if runtime.GOARCH != "amd64" {
		t.Skipf("the seccomp filter of seccompexec is written for amd64, not %s", runtime.GOARCH)
	}
	own, err := proc.OwnCgroup()
	if err != nil {
		t.Skipf("no cgroup v2 here: %v", err)
	}
	cg, err := os.MkdirTemp(own, "e2e-container-")
	if err != nil {
		t.Fatalf("container cgroup: %v", err)
	}
	t.Cleanup(func() { removeCgroup(t, cg) })
	script := filepath.Join(t.TempDir(), "container.sh")
	if err := os.WriteFile(script, []byte(containerScript), 0o644); err != nil {
		t.Fatal(err)
	}
	seccompexec := buildOnce(t, "seccompexec", "./internal/e2e/seccompexec", "")
	caps := DockerCaps
	for _, c := range capAdd {
		caps += ",+" + c
	}
	return []string{"/bin/sh", script, cg, caps, seccompexec}
}

// removeCgroup removes cg once it is empty; processes still in it after
// 10 s fail t and are killed (cgroup.kill).
func removeCgroup(t testing.TB, cg string) {
	t.Helper()
	empty := func() bool {
		b, err := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
		return errors.Is(err, fs.ErrNotExist) || (err == nil && strings.TrimSpace(string(b)) == "")
	}
	if !testenv.Poll(10*time.Second, empty) {
		b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs")) // for the message only
		t.Errorf("container cgroup %s still holds processes %q; killing them", cg, strings.Fields(string(b)))
		if err := os.WriteFile(filepath.Join(cg, "cgroup.kill"), []byte("1"), 0o644); err != nil {
			t.Errorf("kill container cgroup %s: %v", cg, err)
		}
		testenv.Poll(10*time.Second, empty)
	}
	if err := os.Remove(cg); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("remove container cgroup: %v", err)
	}
}

// ProcStatus returns the lines of /proc/PID/status named by keys (e.g.
// "CapEff", "NoNewPrivs", "Seccomp"), key to value.
func ProcStatus(pid int, keys ...string) (map[string]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil, fmt.Errorf("status of pid %d: %w", pid, err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		for _, want := range keys {
			if ok && k == want {
				out[k] = strings.TrimSpace(v)
			}
		}
	}
	return out, nil
}
