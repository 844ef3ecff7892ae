package core

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// procStat is what the tests need of /proc/PID/stat.
type procStat struct {
	PID, PPID, PGID int
	State           byte
	Comm            string
}

// readStat reads /proc/PID/stat (fields counted after the last ')', since
// comm may hold spaces).
func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procStat{}, err
	}
	open, i := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || i < 0 || i+2 >= len(b) {
		return procStat{}, fmt.Errorf("/proc/%d/stat malformed: %q", pid, b)
	}
	f := bytes.Fields(b[i+2:])
	if len(f) < 3 {
		return procStat{}, fmt.Errorf("/proc/%d/stat malformed: %q", pid, b)
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return procStat{}, fmt.Errorf("/proc/%d/stat malformed: %q", pid, b)
	}
	return procStat{PID: pid, PPID: ppid, PGID: pgid, State: f[0][0], Comm: string(b[open+1 : i])}, nil
}

// allProcs reads every process in /proc (vanishing ones are skipped).
func allProcs(t *testing.T) []procStat {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var out []procStat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if p, err := readStat(pid); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// fdEntry is one open descriptor of a process.
type fdEntry struct {
	FD     int
	Target string // readlink of /proc/PID/fd/N: "socket:[123]", "pipe:[9]", a path
}

// openFDs lists the descriptors of pid, sorted.
func openFDs(t *testing.T, pid int) []fdEntry {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("list %s: %v", dir, err)
	}
	var out []fdEntry
	for _, e := range ents {
		n, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		out = append(out, fdEntry{n, target})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out
}

// kindInode parses "socket:[123]" or "pipe:[9]" into its kind and inode.
func kindInode(target string) (kind string, ino uint64, ok bool) {
	k, rest, found := strings.Cut(target, ":[")
	if !found || !strings.HasSuffix(rest, "]") {
		return "", 0, false
	}
	n, err := strconv.ParseUint(strings.TrimSuffix(rest, "]"), 10, 64)
	if err != nil {
		return "", 0, false
	}
	return k, n, true
}

// inodesOf returns the inodes of pid's descriptors of kind ("socket", "pipe").
func inodesOf(t *testing.T, pid int, kind string) map[uint64]int {
	t.Helper()
	out := map[uint64]int{}
	for _, e := range openFDs(t, pid) {
		if k, ino, ok := kindInode(e.Target); ok && k == kind {
			out[ino] = e.FD
		}
	}
	return out
}

// tcpListenInode returns the inode of the listening TCP socket bound to
// addr ("127.0.0.1:PORT") from /proc/net/tcp.
func tcpListenInode(t *testing.T, addr string) uint64 {
	t.Helper()
	host, portS, ok := strings.Cut(addr, ":")
	if !ok || host != "127.0.0.1" {
		t.Fatalf("tcpListenInode: want 127.0.0.1:PORT, got %q", addr)
	}
	port, err := strconv.Atoi(portS)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("0100007F:%04X", port)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode
		if len(fl) >= 10 && fl[1] == want && fl[3] == "0A" {
			n, err := strconv.ParseUint(fl[9], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no listening socket on %s in /proc/net/tcp", addr)
	return 0
}

// unixListenInodes returns the inodes of listening Unix sockets whose bound
// name is path (the name given to bind(2)) from /proc/net/unix.
func unixListenInodes(t *testing.T) map[uint64]string {
	t.Helper()
	f, err := os.Open("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[uint64]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		// Num RefCount Protocol Flags Type St Inode Path
		if len(fl) >= 8 && fl[3] == "00010000" {
			n, err := strconv.ParseUint(fl[6], 10, 64)
			if err == nil {
				out[n] = fl[7]
			}
		}
	}
	return out
}

// environ returns /proc/PID/environ as a map.
func environ(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, kv := range bytes.Split(b, []byte{0}) {
		if k, v, ok := strings.Cut(string(kv), "="); ok {
			out[k] = v
		}
	}
	return out
}

// exeOf returns the executable of pid ("" if unreadable).
func exeOf(pid int) string {
	p, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return ""
	}
	return p
}
