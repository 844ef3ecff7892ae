// Package proc is the supervisor's view of processes: the Reaper (the only
// caller of wait4, through which every child is started), fork+exec with an
// exact descriptor list, one /proc tree walker (used by supervision and by
// metrics), signalling and ending process trees, and the clean-up of orphans
// left among the supervisor's children.
//
// Which processes belong to an app: where the supervisor can create cgroups
// (a writable cgroup2 mount: root on a cgroup v2 or hybrid host, systemd's
// Delegate=yes, PID 1 of a container with its cgroup mounted read-write),
// Cgroups gives each app a cgroup v2 of its own, and each of its
// generations a fresh leaf below it (Cgroup.Leaf) that ForkExec starts the
// generation in (Spec.Cgroup, clone3 CLONE_INTO_CGROUP): every descendant,
// including daemons that setsid or double-fork, is counted and ended with
// the leaf or the app's cgroup (cgroup.kill, or SIGKILL to each member on
// kernels before 5.14). Without cgroup access an app's processes are its main
// process's tree and process group, plus the daemons that left both: they
// re-parent to the supervisor (child subreaper, or PID 1), and the app they
// belong to is read from their environment (HasEnv: the supervise package
// marks each process it starts for an app without a cgroup). A daemon whose
// parent still lives, or that replaced its environment, escapes that; the
// supervisor's own stop still ends every child it has.
//
// Processes the supervisor did not start (a dead predecessor's orphans) are
// found through /proc and their cgroups, their sockets copied with
// TakeSockets (pidfd_getfd), and they are ended with Terminate, which polls
// /proc: they are never waited for.
//
// Contract: no other package waits for a child. A process started anywhere
// in the supervisor is started through Reaper.Start (ForkExec, Output) or
// registered with Reaper.Adopt; its exit arrives exactly once on the channel
// those return. Functions that signal processes treat ESRCH as success.
package proc
