//go:build linux && amd64

// Command seccompexec installs an equivalent of Docker's default seccomp
// profile (moby profiles/seccomp/default.json), resolved for the
// capabilities the process holds as Docker resolves it for a container's,
// then executes its arguments:
//
//	seccompexec CMD [ARG...]
//
// The end-to-end tests use it, after setpriv has set the capabilities and
// no_new_privs, to run the supervisor as Docker's default runtime does
// (internal/e2e.DockerLike). On x86_64 every system call the profile lists
// for all containers is allowed, clone without namespace flags, socket
// except AF_VSOCK, personality with the profile's five values, and the
// calls the profile grants with a capability the process has in its
// effective set (bpf with CAP_BPF, pidfd_getfd with CAP_SYS_PTRACE, clone3,
// mount, unshare ... with CAP_SYS_ADMIN, chroot with CAP_SYS_CHROOT, ...);
// without CAP_SYS_ADMIN clone3 fails with ENOSYS (so that libc falls back
// to clone); everything else fails with EPERM. Unlike Docker, 32-bit and
// x32 system calls fail with EPERM instead of being filtered by their own
// lists.
package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: seccompexec CMD [ARG...]")
		os.Exit(2)
	}
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "seccompexec:", err)
		os.Exit(1)
	}
}

// run installs the filter on every thread and replaces the process with
// argv; it returns only on failure.
func run(argv []string) error {
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	var hdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return fmt.Errorf("capget: %w", err)
	}
	f := filter(uint64(data[1].Effective)<<32 | uint64(data[0].Effective))
	prog := unix.SockFprog{Len: uint16(len(f)), Filter: &f[0]}
	if _, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, unix.SECCOMP_FILTER_FLAG_TSYNC,
		uintptr(unsafe.Pointer(&prog))); errno != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, %d instructions): %w", len(f), errno)
	}
	if err := unix.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}

// Offsets in struct seccomp_data (little-endian: an argument's low 32 bits
// come first).
const (
	offNr   = 0
	offArch = 4
	offArg0 = 16
)

// cloneNamespaces is the profile's mask of clone flags refused without
// CAP_SYS_ADMIN: CLONE_NEWNS, NEWCGROUP, NEWUTS, NEWIPC, NEWUSER, NEWPID,
// NEWNET.
const cloneNamespaces = 0x7E020000

// afVsock is the socket family the profile refuses.
const afVsock = 40

// personalities are the personality(2) arguments the profile allows.
var personalities = []uint32{0, 8, 0x20000, 0x20008, 0xffffffff}

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, K: k, Jt: jt, Jf: jf}
}

var (
	allow  = stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ALLOW)
	eperm  = stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(unix.EPERM))
	enosys = stmt(unix.BPF_RET|unix.BPF_K, unix.SECCOMP_RET_ERRNO|uint32(unix.ENOSYS))
	loadNr = stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offNr)
)

// filter returns the program for the effective capability set eff: each
// rule compares the system call number; the rules on arguments come last.
func filter(eff uint64) []unix.SockFilter {
	p := []unix.SockFilter{
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArch),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.AUDIT_ARCH_X86_64, 1, 0),
		eperm,
		loadNr,
		jump(unix.BPF_JMP|unix.BPF_JGE|unix.BPF_K, 0x40000000, 0, 1), // x32
		eperm,
	}
	nrs := append([]uintptr{}, allowed...)
	for _, g := range byCapability {
		if eff&(1<<g.capability) != 0 {
			nrs = append(nrs, g.calls...)
		}
	}
	for _, nr := range nrs {
		p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, uint32(nr), 0, 1), allow)
	}
	p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_CLONE3, 0, 1), enosys)
	// clone: flags & cloneNamespaces must be 0.
	p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_CLONE, 0, 4),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0),
		jump(unix.BPF_JMP|unix.BPF_JSET|unix.BPF_K, cloneNamespaces, 0, 1), eperm, allow)
	// socket: any family but AF_VSOCK.
	p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_SOCKET, 0, 4),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0),
		jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, afVsock, 0, 1), eperm, allow)
	// personality: one of personalities.
	p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, unix.SYS_PERSONALITY, 0, uint8(2*len(personalities)+2)),
		stmt(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, offArg0))
	for _, v := range personalities {
		p = append(p, jump(unix.BPF_JMP|unix.BPF_JEQ|unix.BPF_K, v, 0, 1), allow)
	}
	return append(p, eperm, eperm)
}

// byCapability are the system calls the profile allows to a container
// with a capability (with CAP_SYS_ADMIN, clone and clone3 without
// restriction: the rules on clone3 and clone's flags are never reached).
var byCapability = []struct {
	capability uint
	calls      []uintptr
}{
	{unix.CAP_SYS_ADMIN, []uintptr{unix.SYS_BPF, unix.SYS_CLONE, unix.SYS_CLONE3, unix.SYS_FANOTIFY_INIT, unix.SYS_FSCONFIG,
		unix.SYS_FSMOUNT, unix.SYS_FSOPEN, unix.SYS_FSPICK, unix.SYS_LOOKUP_DCOOKIE, unix.SYS_MOUNT, unix.SYS_MOUNT_SETATTR,
		unix.SYS_MOVE_MOUNT, unix.SYS_OPEN_TREE, unix.SYS_PERF_EVENT_OPEN, unix.SYS_QUOTACTL, unix.SYS_QUOTACTL_FD,
		unix.SYS_SETDOMAINNAME, unix.SYS_SETHOSTNAME, unix.SYS_SETNS, unix.SYS_SYSLOG, unix.SYS_UMOUNT2, unix.SYS_UNSHARE}},
	{unix.CAP_SYS_BOOT, []uintptr{unix.SYS_REBOOT}},
	{unix.CAP_SYS_MODULE, []uintptr{unix.SYS_DELETE_MODULE, unix.SYS_INIT_MODULE, unix.SYS_FINIT_MODULE}},
	{unix.CAP_SYS_PACCT, []uintptr{unix.SYS_ACCT}},
	{unix.CAP_SYS_PTRACE, []uintptr{unix.SYS_KCMP, unix.SYS_PIDFD_GETFD, unix.SYS_PROCESS_MADVISE}},
	{unix.CAP_SYS_RAWIO, []uintptr{unix.SYS_IOPL, unix.SYS_IOPERM}},
	{unix.CAP_SYS_TIME, []uintptr{unix.SYS_SETTIMEOFDAY, unix.SYS_CLOCK_SETTIME}},
	{unix.CAP_SYS_TTY_CONFIG, []uintptr{unix.SYS_VHANGUP}},
	{unix.CAP_SYS_NICE, []uintptr{unix.SYS_GET_MEMPOLICY, unix.SYS_MBIND, unix.SYS_SET_MEMPOLICY, unix.SYS_SET_MEMPOLICY_HOME_NODE}},
	{unix.CAP_SYSLOG, []uintptr{unix.SYS_SYSLOG}},
	{unix.CAP_BPF, []uintptr{unix.SYS_BPF}},
	{unix.CAP_PERFMON, []uintptr{unix.SYS_PERF_EVENT_OPEN}},
	{unix.CAP_DAC_READ_SEARCH, []uintptr{unix.SYS_OPEN_BY_HANDLE_AT}},
	{unix.CAP_SYS_CHROOT, []uintptr{unix.SYS_CHROOT}},
}

// allowed are the system calls the profile allows every container on
// x86_64 (ptrace and process_vm_* from Linux 4.8, arch_prctl and
// modify_ldt on amd64).
var allowed = []uintptr{
	unix.SYS_ACCEPT, unix.SYS_ACCEPT4, unix.SYS_ACCESS, unix.SYS_ADJTIMEX, unix.SYS_ALARM, unix.SYS_BIND,
	unix.SYS_BRK, unix.SYS_CAPGET, unix.SYS_CAPSET, unix.SYS_CHDIR, unix.SYS_CHMOD, unix.SYS_CHOWN,
	unix.SYS_CLOCK_ADJTIME, unix.SYS_CLOCK_GETRES, unix.SYS_CLOCK_GETTIME, unix.SYS_CLOCK_NANOSLEEP,
	unix.SYS_CLOSE, unix.SYS_CLOSE_RANGE, unix.SYS_CONNECT, unix.SYS_COPY_FILE_RANGE, unix.SYS_CREAT,
	unix.SYS_DUP, unix.SYS_DUP2, unix.SYS_DUP3, unix.SYS_EPOLL_CREATE, unix.SYS_EPOLL_CREATE1,
	unix.SYS_EPOLL_CTL, unix.SYS_EPOLL_CTL_OLD, unix.SYS_EPOLL_PWAIT, unix.SYS_EPOLL_PWAIT2, unix.SYS_EPOLL_WAIT,
	unix.SYS_EPOLL_WAIT_OLD, unix.SYS_EVENTFD, unix.SYS_EVENTFD2, unix.SYS_EXECVE, unix.SYS_EXECVEAT,
	unix.SYS_EXIT, unix.SYS_EXIT_GROUP, unix.SYS_FACCESSAT, unix.SYS_FACCESSAT2, unix.SYS_FADVISE64,
	unix.SYS_FALLOCATE, unix.SYS_FANOTIFY_MARK, unix.SYS_FCHDIR, unix.SYS_FCHMOD, unix.SYS_FCHMODAT,
	unix.SYS_FCHOWN, unix.SYS_FCHOWNAT, unix.SYS_FCNTL, unix.SYS_FDATASYNC, unix.SYS_FGETXATTR,
	unix.SYS_FLISTXATTR, unix.SYS_FLOCK, unix.SYS_FORK, unix.SYS_FREMOVEXATTR, unix.SYS_FSETXATTR,
	unix.SYS_FSTAT, unix.SYS_FSTATFS, unix.SYS_FSYNC, unix.SYS_FTRUNCATE, unix.SYS_FUTEX, unix.SYS_FUTEX_WAITV,
	unix.SYS_FUTIMESAT, unix.SYS_GETCPU, unix.SYS_GETCWD, unix.SYS_GETDENTS, unix.SYS_GETDENTS64,
	unix.SYS_GETEGID, unix.SYS_GETEUID, unix.SYS_GETGID, unix.SYS_GETGROUPS, unix.SYS_GETITIMER,
	unix.SYS_GETPEERNAME, unix.SYS_GETPGID, unix.SYS_GETPGRP, unix.SYS_GETPID, unix.SYS_GETPPID,
	unix.SYS_GETPRIORITY, unix.SYS_GETRANDOM, unix.SYS_GETRESGID, unix.SYS_GETRESUID, unix.SYS_GETRLIMIT,
	unix.SYS_GET_ROBUST_LIST, unix.SYS_GETRUSAGE, unix.SYS_GETSID, unix.SYS_GETSOCKNAME, unix.SYS_GETSOCKOPT,
	unix.SYS_GET_THREAD_AREA, unix.SYS_GETTID, unix.SYS_GETTIMEOFDAY, unix.SYS_GETUID, unix.SYS_GETXATTR,
	unix.SYS_INOTIFY_ADD_WATCH, unix.SYS_INOTIFY_INIT, unix.SYS_INOTIFY_INIT1, unix.SYS_INOTIFY_RM_WATCH,
	unix.SYS_IO_CANCEL, unix.SYS_IOCTL, unix.SYS_IO_DESTROY, unix.SYS_IO_GETEVENTS, unix.SYS_IO_PGETEVENTS,
	unix.SYS_IOPRIO_GET, unix.SYS_IOPRIO_SET, unix.SYS_IO_SETUP, unix.SYS_IO_SUBMIT, unix.SYS_IO_URING_ENTER,
	unix.SYS_IO_URING_REGISTER, unix.SYS_IO_URING_SETUP, unix.SYS_KILL, unix.SYS_LANDLOCK_ADD_RULE,
	unix.SYS_LANDLOCK_CREATE_RULESET, unix.SYS_LANDLOCK_RESTRICT_SELF, unix.SYS_LCHOWN, unix.SYS_LGETXATTR,
	unix.SYS_LINK, unix.SYS_LINKAT, unix.SYS_LISTEN, unix.SYS_LISTXATTR, unix.SYS_LLISTXATTR,
	unix.SYS_LREMOVEXATTR, unix.SYS_LSEEK, unix.SYS_LSETXATTR, unix.SYS_LSTAT, unix.SYS_MADVISE,
	unix.SYS_MEMBARRIER, unix.SYS_MEMFD_CREATE, unix.SYS_MEMFD_SECRET, unix.SYS_MINCORE, unix.SYS_MKDIR,
	unix.SYS_MKDIRAT, unix.SYS_MKNOD, unix.SYS_MKNODAT, unix.SYS_MLOCK, unix.SYS_MLOCK2, unix.SYS_MLOCKALL,
	unix.SYS_MMAP, unix.SYS_MPROTECT, unix.SYS_MQ_GETSETATTR, unix.SYS_MQ_NOTIFY, unix.SYS_MQ_OPEN,
	unix.SYS_MQ_TIMEDRECEIVE, unix.SYS_MQ_TIMEDSEND, unix.SYS_MQ_UNLINK, unix.SYS_MREMAP, unix.SYS_MSGCTL,
	unix.SYS_MSGGET, unix.SYS_MSGRCV, unix.SYS_MSGSND, unix.SYS_MSYNC, unix.SYS_MUNLOCK, unix.SYS_MUNLOCKALL,
	unix.SYS_MUNMAP, unix.SYS_NAME_TO_HANDLE_AT, unix.SYS_NANOSLEEP, unix.SYS_NEWFSTATAT, unix.SYS_OPEN,
	unix.SYS_OPENAT, unix.SYS_OPENAT2, unix.SYS_PAUSE, unix.SYS_PIDFD_OPEN, unix.SYS_PIDFD_SEND_SIGNAL,
	unix.SYS_PIPE, unix.SYS_PIPE2, unix.SYS_PKEY_ALLOC, unix.SYS_PKEY_FREE, unix.SYS_PKEY_MPROTECT,
	unix.SYS_POLL, unix.SYS_PPOLL, unix.SYS_PRCTL, unix.SYS_PREAD64, unix.SYS_PREADV, unix.SYS_PREADV2,
	unix.SYS_PRLIMIT64, unix.SYS_PROCESS_MRELEASE, unix.SYS_PSELECT6, unix.SYS_PWRITE64, unix.SYS_PWRITEV,
	unix.SYS_PWRITEV2, unix.SYS_READ, unix.SYS_READAHEAD, unix.SYS_READLINK, unix.SYS_READLINKAT, unix.SYS_READV,
	unix.SYS_RECVFROM, unix.SYS_RECVMMSG, unix.SYS_RECVMSG, unix.SYS_REMAP_FILE_PAGES, unix.SYS_REMOVEXATTR,
	unix.SYS_RENAME, unix.SYS_RENAMEAT, unix.SYS_RENAMEAT2, unix.SYS_RESTART_SYSCALL, unix.SYS_RMDIR,
	unix.SYS_RSEQ, unix.SYS_RT_SIGACTION, unix.SYS_RT_SIGPENDING, unix.SYS_RT_SIGPROCMASK,
	unix.SYS_RT_SIGQUEUEINFO, unix.SYS_RT_SIGRETURN, unix.SYS_RT_SIGSUSPEND, unix.SYS_RT_SIGTIMEDWAIT,
	unix.SYS_RT_TGSIGQUEUEINFO, unix.SYS_SCHED_GETAFFINITY, unix.SYS_SCHED_GETATTR, unix.SYS_SCHED_GETPARAM,
	unix.SYS_SCHED_GET_PRIORITY_MAX, unix.SYS_SCHED_GET_PRIORITY_MIN, unix.SYS_SCHED_GETSCHEDULER,
	unix.SYS_SCHED_RR_GET_INTERVAL, unix.SYS_SCHED_SETAFFINITY, unix.SYS_SCHED_SETATTR, unix.SYS_SCHED_SETPARAM,
	unix.SYS_SCHED_SETSCHEDULER, unix.SYS_SCHED_YIELD, unix.SYS_SECCOMP, unix.SYS_SELECT, unix.SYS_SEMCTL,
	unix.SYS_SEMGET, unix.SYS_SEMOP, unix.SYS_SEMTIMEDOP, unix.SYS_SENDFILE, unix.SYS_SENDMMSG, unix.SYS_SENDMSG,
	unix.SYS_SENDTO, unix.SYS_SETFSGID, unix.SYS_SETFSUID, unix.SYS_SETGID, unix.SYS_SETGROUPS,
	unix.SYS_SETITIMER, unix.SYS_SETPGID, unix.SYS_SETPRIORITY, unix.SYS_SETREGID, unix.SYS_SETRESGID,
	unix.SYS_SETRESUID, unix.SYS_SETREUID, unix.SYS_SETRLIMIT, unix.SYS_SET_ROBUST_LIST, unix.SYS_SETSID,
	unix.SYS_SETSOCKOPT, unix.SYS_SET_THREAD_AREA, unix.SYS_SET_TID_ADDRESS, unix.SYS_SETUID, unix.SYS_SETXATTR,
	unix.SYS_SHMAT, unix.SYS_SHMCTL, unix.SYS_SHMDT, unix.SYS_SHMGET, unix.SYS_SHUTDOWN, unix.SYS_SIGALTSTACK,
	unix.SYS_SIGNALFD, unix.SYS_SIGNALFD4, unix.SYS_SOCKETPAIR, unix.SYS_SPLICE, unix.SYS_STAT, unix.SYS_STATFS,
	unix.SYS_STATX, unix.SYS_SYMLINK, unix.SYS_SYMLINKAT, unix.SYS_SYNC, unix.SYS_SYNC_FILE_RANGE,
	unix.SYS_SYNCFS, unix.SYS_SYSINFO, unix.SYS_TEE, unix.SYS_TGKILL, unix.SYS_TIME, unix.SYS_TIMER_CREATE,
	unix.SYS_TIMER_DELETE, unix.SYS_TIMER_GETOVERRUN, unix.SYS_TIMER_GETTIME, unix.SYS_TIMER_SETTIME,
	unix.SYS_TIMERFD_CREATE, unix.SYS_TIMERFD_GETTIME, unix.SYS_TIMERFD_SETTIME, unix.SYS_TIMES, unix.SYS_TKILL,
	unix.SYS_TRUNCATE, unix.SYS_UMASK, unix.SYS_UNAME, unix.SYS_UNLINK, unix.SYS_UNLINKAT, unix.SYS_UTIME,
	unix.SYS_UTIMENSAT, unix.SYS_UTIMES, unix.SYS_VFORK, unix.SYS_VMSPLICE, unix.SYS_WAIT4, unix.SYS_WAITID,
	unix.SYS_WRITE, unix.SYS_WRITEV,
	unix.SYS_PROCESS_VM_READV, unix.SYS_PROCESS_VM_WRITEV, unix.SYS_PTRACE, unix.SYS_ARCH_PRCTL, unix.SYS_MODIFY_LDT,
}
