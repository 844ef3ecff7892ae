package core

import (
	"sort"
	"strings"
	"testing"

	"github.com/gunisup/supervisor/internal/testenv"
)

// fdEntry is one open descriptor of a process.
type fdEntry struct {
	FD     int
	Target string // readlink of /proc/PID/fd/N: "socket:[123]", "pipe:[9]", a path
}

// openFDs lists the descriptors of pid, sorted.
func openFDs(t *testing.T, pid int) []fdEntry {
	t.Helper()
	fds, err := testenv.FDs(pid)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]fdEntry, 0, len(fds))
	for fd, target := range fds {
		out = append(out, fdEntry{fd, target})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out
}

// inodesOf returns the inodes of pid's descriptors of kind ("socket", "pipe").
func inodesOf(t *testing.T, pid int, kind string) map[uint64]int {
	t.Helper()
	out := map[uint64]int{}
	for _, e := range openFDs(t, pid) {
		if k, ino, ok := testenv.KindInode(e.Target); ok && k == kind {
			out[ino] = e.FD
		}
	}
	return out
}

// tcpListenInode returns the inode of the listening TCP socket bound to
// addr ("127.0.0.1:PORT") from /proc/net/tcp.
func tcpListenInode(t *testing.T, addr string) uint64 {
	t.Helper()
	ino, err := testenv.FindSocket("/proc/net/tcp", addr, testenv.TCPListen)
	if err != nil {
		t.Fatal(err)
	}
	return ino
}

// environ returns /proc/PID/environ as a map.
func environ(t *testing.T, pid int) map[string]string {
	t.Helper()
	env, err := testenv.Environ(pid)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			out[k] = v
		}
	}
	return out
}
