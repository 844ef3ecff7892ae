package doctor

import (
	"bufio"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// caps is what /proc/self/status says about the process's privileges.
type caps struct {
	// eff and bnd are the effective and bounding capability sets.
	eff, bnd uint64
	// seccomp is 2 when a seccomp filter applies (systemd's
	// SystemCallFilter=, a container runtime's profile), 0 otherwise.
	seccomp int
	// read is false when /proc/self/status could not be read; every
	// capability then counts as present, so that a probe blames the error
	// it saw rather than a guess.
	read bool
}

// readCaps parses CapEff, CapBnd and Seccomp of /proc/self/status.
func readCaps() caps {
	c := caps{}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return c
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		switch key {
		case "CapEff":
			c.eff, _ = strconv.ParseUint(val, 16, 64)
		case "CapBnd":
			c.bnd, _ = strconv.ParseUint(val, 16, 64)
		case "Seccomp":
			c.seccomp, _ = strconv.Atoi(val)
		}
	}
	c.read = sc.Err() == nil
	return c
}

// has reports whether capability n is in the effective set.
func (c caps) has(n int) bool { return !c.read || c.eff&(1<<uint(n)) != 0 }

// missing returns the names of the capabilities of ns not in the effective
// set.
func (c caps) missing(ns ...int) []string {
	var out []string
	for _, n := range ns {
		if !c.has(n) {
			out = append(out, capName(n))
		}
	}
	return out
}

// filtered reports whether a seccomp filter applies to the process.
func (c caps) filtered() bool { return c.seccomp == 2 }

// capName is the CAP_ name of capability n.
func capName(n int) string {
	switch n {
	case unix.CAP_SETGID:
		return "CAP_SETGID"
	case unix.CAP_SETUID:
		return "CAP_SETUID"
	case unix.CAP_NET_ADMIN:
		return "CAP_NET_ADMIN"
	case unix.CAP_SYS_PTRACE:
		return "CAP_SYS_PTRACE"
	case unix.CAP_SYS_ADMIN:
		return "CAP_SYS_ADMIN"
	case unix.CAP_BPF:
		return "CAP_BPF"
	}
	return "capability " + strconv.Itoa(n)
}

// capFix is the fix for missing capabilities: the unit line and the
// container flag that grant them.
func capFix(missing []string) string {
	short := make([]string, len(missing))
	for i, m := range missing {
		short[i] = "--cap-add=" + strings.TrimPrefix(m, "CAP_")
	}
	return "grant " + strings.Join(missing, " ") + " (systemd: CapabilityBoundingSet= listing " + strings.Join(missing, " ") +
		"; container: " + strings.Join(short, " ") + ")"
}
