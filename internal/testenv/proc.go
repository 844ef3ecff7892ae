package testenv

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Stat is what tests read of /proc/PID/stat.
type Stat struct {
	PID, PPID, PGID int
	// State is the one-letter state: R, S, D, T, Z...
	State byte
	// Comm is the command name (at most 15 bytes, may hold spaces).
	Comm string
	// CPUTicks is utime+stime: clock ticks of every thread, children excluded.
	CPUTicks int64
}

// ReadStat reads /proc/PID/stat. Fields are counted after the last ')', as
// the command name may hold anything, ") " included.
func ReadStat(pid int) (Stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, fmt.Errorf("reading stat of pid %d: %w", pid, err)
	}
	open, i := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || i < open || i+2 >= len(b) {
		return Stat{}, fmt.Errorf("parsing stat of pid %d: %q", pid, b)
	}
	// f[0] is field 3 (state); ppid, pgrp are 4 and 5; utime, stime 14 and 15.
	f := bytes.Fields(b[i+2:])
	if len(f) < 13 {
		return Stat{}, fmt.Errorf("parsing stat of pid %d: %d fields after comm: %q", pid, len(f), b)
	}
	var n [4]int64
	for k, idx := range []int{1, 2, 11, 12} {
		if n[k], err = strconv.ParseInt(string(f[idx]), 10, 64); err != nil {
			return Stat{}, fmt.Errorf("parsing field %d of pid %d's stat: %w", idx+3, pid, err)
		}
	}
	return Stat{PID: pid, PPID: int(n[0]), PGID: int(n[1]), State: f[0][0], Comm: string(b[open+1 : i]), CPUTicks: n[2] + n[3]}, nil
}

// Procs reads the stat of every process in /proc; processes that vanish
// while being read are left out. It returns nil when /proc is unreadable.
func Procs() []Stat {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []Stat
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := ReadStat(pid); err == nil {
			out = append(out, st)
		}
	}
	return out
}

// Cmdline returns pid's arguments joined by spaces ("" for a zombie).
func Cmdline(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return "", fmt.Errorf("reading cmdline of pid %d: %w", pid, err)
	}
	return strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '}))), nil
}

// Exe returns the executable of pid ("" when unreadable).
func Exe(pid int) string {
	p, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return ""
	}
	return p
}

// Environ returns pid's environment as it was exec'd (/proc/PID/environ),
// one "KEY=value" per element.
func Environ(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
	if err != nil {
		return nil, fmt.Errorf("reading environment of pid %d: %w", pid, err)
	}
	return strings.Split(strings.TrimRight(string(b), "\x00"), "\x00"), nil
}

// Children returns the children of pid, from /proc/PID/task/*/children (a
// Go program forks from any of its threads).
func Children(pid int) ([]int, error) {
	files, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	if err != nil {
		return nil, fmt.Errorf("listing tasks of pid %d: %w", pid, err)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("listing tasks of pid %d: %w", pid, os.ErrNotExist)
	}
	var out []int
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // the task ended
		}
		for _, field := range strings.Fields(string(b)) {
			n, err := strconv.Atoi(field)
			if err != nil {
				return nil, fmt.Errorf("parsing %s: %w", f, err)
			}
			out = append(out, n)
		}
	}
	return out, nil
}

// NSpids returns the NSpid line of /proc/PID/status: pid's number in each
// PID namespace from the root one to its own.
func NSpids(pid int) ([]int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil, fmt.Errorf("reading status of pid %d: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "NSpid:")
		if !ok {
			continue
		}
		var out []int
		for _, field := range strings.Fields(rest) {
			n, err := strconv.Atoi(field)
			if err != nil {
				return nil, fmt.Errorf("parsing NSpid of pid %d: %w", pid, err)
			}
			out = append(out, n)
		}
		return out, nil
	}
	return nil, fmt.Errorf("pid %d: no NSpid line in status", pid)
}

// FDs maps each open descriptor of pid to its /proc/PID/fd link target
// ("socket:[123]", "pipe:[456]", a path...). Descriptors closed while being
// read are left out.
func FDs(pid int) (map[int]string, error) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing fds of pid %d: %w", pid, err)
	}
	out := map[int]string{}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		target, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue // closed meanwhile
		}
		out[fd] = target
	}
	return out, nil
}

// KindInode parses a descriptor's link target such as "socket:[123]" or
// "pipe:[9]" into its kind and inode; ok is false for anything else.
func KindInode(target string) (kind string, ino uint64, ok bool) {
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

// States of /proc/net/tcp and /proc/net/udp entries.
const (
	TCPListen = "0A"
	// UDPUnconnected is a bound UDP socket without a peer.
	UDPUnconnected = "07"
)

// NetSocket is one IPv4 entry of /proc/net/tcp or /proc/net/udp.
type NetSocket struct {
	// Local is the bound address, "127.0.0.1:8000".
	Local string
	Port  int
	State string
	// RxQueue is the receive queue; for a listening TCP socket, the number
	// of connections waiting in its accept queue.
	RxQueue int
	Inode   uint64
}

// NetSockets reads table, /proc/net/tcp or /proc/net/udp.
func NetSockets(table string) ([]NetSocket, error) {
	b, err := os.ReadFile(table)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", table, err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var out []NetSocket
	for _, line := range lines[1:] {
		// sl local_address rem_address st tx_queue:rx_queue tr:when retrnsmt uid timeout inode
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		s, err := parseNetSocket(f)
		if err != nil {
			return nil, fmt.Errorf("%s: %q: %w", table, line, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func parseNetSocket(f []string) (NetSocket, error) {
	hexIP, hexPort, ok := strings.Cut(f[1], ":")
	if !ok || len(hexIP) != 8 {
		return NetSocket{}, fmt.Errorf("local address %q", f[1])
	}
	ip, err1 := strconv.ParseUint(hexIP, 16, 32)
	port, err2 := strconv.ParseUint(hexPort, 16, 16)
	_, rx, _ := strings.Cut(f[4], ":")
	queue, err3 := strconv.ParseUint(rx, 16, 32)
	ino, err4 := strconv.ParseUint(f[9], 10, 64)
	for _, err := range []error{err1, err2, err3, err4} {
		if err != nil {
			return NetSocket{}, err
		}
	}
	// The address is the kernel's 32-bit word, printed on a little-endian host.
	addr := net.IPv4(byte(ip), byte(ip>>8), byte(ip>>16), byte(ip>>24))
	return NetSocket{Local: net.JoinHostPort(addr.String(), strconv.Itoa(int(port))), Port: int(port),
		State: f[3], RxQueue: int(queue), Inode: ino}, nil
}

// FindSocket returns the inode of the socket of table (/proc/net/tcp or
// /proc/net/udp) bound to addr ("127.0.0.1:PORT") in state (TCPListen...).
func FindSocket(table, addr, state string) (uint64, error) {
	socks, err := NetSockets(table)
	if err != nil {
		return 0, err
	}
	for _, s := range socks {
		if s.Local == addr && s.State == state {
			return s.Inode, nil
		}
	}
	return 0, fmt.Errorf("%s: no socket on %s in state %s", table, addr, state)
}

// UnixListeners maps the inode of every listening Unix socket to the name it
// was bound to (/proc/net/unix; "" for an unnamed one).
func UnixListeners() (map[uint64]string, error) {
	b, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		return nil, fmt.Errorf("reading /proc/net/unix: %w", err)
	}
	out := map[uint64]string{}
	for _, line := range strings.Split(string(b), "\n") {
		// Num RefCount Protocol Flags Type St Inode Path; Flags 00010000 = listening.
		f := strings.Fields(line)
		if len(f) < 7 || f[3] != "00010000" {
			continue
		}
		n, err := strconv.ParseUint(f[6], 10, 64)
		if err != nil {
			continue // the header line
		}
		if len(f) >= 8 {
			out[n] = f[7]
		} else {
			out[n] = ""
		}
	}
	return out, nil
}
