// Package steer gives each generation of an app its own listening socket on
// one address and lets the supervisor choose, with one map update, which of
// them receives new connections.
//
// # TCP
//
// A Group binds every Listener with SO_REUSEPORT on the same address, so the
// kernel keeps them in one reuseport group. A BPF_PROG_TYPE_SK_REUSEPORT
// program, assembled at run time with cilium/ebpf's asm package (no clang),
// is attached to the group with SO_ATTACH_REUSEPORT_EBPF. For each incoming
// connection it reads the steering value from a one-element array map
// (serving slot, canary slot, threshold; 16 bytes) and selects a slot of a
// BPF_MAP_TYPE_REUSEPORT_SOCKARRAY in which every Listener sits at its own
// slot. Group.Serve writes the serving slot with no canary: one map update,
// effective for the next SYN. Connections already queued on other listeners
// stay there until those listeners accept them.
//
// # Weighted split
//
// Group.Split writes a canary slot and a threshold with the serving slot,
// in the same single map update. The program compares the hash field of
// struct sk_reuseport_md (offset 32; the kernel's hash of the connection's
// 4-tuple, the one its own reuseport selection uses, salted per boot) with
// the threshold, share × 2^32: a connection below it goes to the canary
// slot, the others to the serving slot. A 4-tuple therefore lands on the
// same listener for as long as the split stays, and a share of 1 sends
// every new connection to the canary, 0 none. When the chosen slot's socket
// is gone (its slot empty or its socket closing) the program tries the
// other one before leaving the choice to the kernel. Without a canary
// (canary slot noSlot, threshold 0) it selects the serving slot only.
// Groups adopted from an image whose map holds the serving slot alone (4
// bytes) keep steering and refuse Split (ErrSplitUnsupported).
//
// The program is loaded with expected attach type
// BPF_SK_REUSEPORT_SELECT_OR_MIGRATE. When a listener's socket is finally
// closed (its last file descriptor, in the supervisor or in a child), the
// kernel runs the program once per connection still queued on it (with
// sk_reuseport_md.migrating_sk, offset 48, set); the program selects the
// serving listener, or the canary while the serving one is the one
// closing, and the connection moves to that listener's accept queue
// instead of being reset. The kernel does this for a
// SELECT_OR_MIGRATE program whatever net.ipv4.tcp_migrate_req says (that
// sysctl only enables migration by hash for groups without such a program);
// MigrateReqSysctl reports it for diagnostics. If the serving listener is
// itself the one closing and no canary is set, or no listener serves, the
// program lets the kernel choose among the remaining listeners by hash.
//
// A holder socket (Group.Hold) is in the reuseport group but in no slot,
// so the kernel's hash may put a connection on it while no listener
// serves. Group.Requeue moves such connections to the serving listener:
// it shuts the holder down (the program migrates its queue as on a close)
// and listens on it again.
//
// Loading, attaching and updating the maps need CAP_BPF (CAP_NET_ADMIN is
// not needed: SK_REUSEPORT is not a network-admin program type) and Linux
// 5.14 or newer.
// Available reports why steering cannot be used, so the caller can fall back
// to one shared socket (ModeShared).
//
// # Unix sockets
//
// Linux 6.18 refuses SO_REUSEPORT on AF_UNIX sockets (setsockopt fails with
// EOPNOTSUPP; TestUnixReusePortRefused probes the running kernel), so Unix
// sockets cannot share a reuseport group. Instead each generation listens
// on its own path and SwitchUnix atomically renames a hard link to that path
// over the public path: connect(2) resolves the path when it is called, so
// new clients reach the new generation while connections queued on the old
// one stay with it. A path names one socket at a time, so rename steering
// cannot split new connections by weight (listen's Table.Split refuses it).
package steer
