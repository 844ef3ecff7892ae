package e2e

import (
	"bufio"
	"bytes"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gunisup/supervisor/internal/testenv"
)

// Proc is one line of the process table.
type Proc struct {
	PID, PPID int
	// State is the letter of /proc/PID/stat (R, S, Z, ...).
	State byte
	// Cmd is the command line, arguments joined by spaces (empty for zombies).
	Cmd string
}

// ProcTable reads every process of /proc (testenv.Procs) with its command
// line; processes that vanish while it reads are left out.
func ProcTable() map[int]Proc {
	out := map[int]Proc{}
	for _, st := range testenv.Procs() {
		cmd, _ := testenv.Cmdline(st.PID) // unreadable for a process gone meanwhile: Cmd stays ""
		out[st.PID] = Proc{PID: st.PID, PPID: st.PPID, State: st.State, Cmd: cmd}
	}
	return out
}

// Descendants returns the live (not zombie) descendants of root in the
// table procs, in increasing pid order.
func Descendants(procs map[int]Proc, root int) []int {
	kids := map[int][]int{}
	for _, p := range procs {
		kids[p.PPID] = append(kids[p.PPID], p.PID)
	}
	var out []int
	var walk func(int)
	walk = func(pid int) {
		for _, k := range kids[pid] {
			if procs[k].State != 'Z' {
				out = append(out, k)
			}
			walk(k)
		}
	}
	walk(root)
	slices.Sort(out)
	return out
}

// GunicornChildren returns the live children of root whose command line
// names gunicorn (the Gunicorn masters a supervisor runs), in pid order.
func GunicornChildren(procs map[int]Proc, root int) []int {
	var out []int
	for _, p := range procs {
		if p.PPID == root && p.State != 'Z' && strings.Contains(p.Cmd, "gunicorn") {
			out = append(out, p.PID)
		}
	}
	slices.Sort(out)
	return out
}

// MarkedGunicorns returns the live processes carrying one of marks (see
// testenv.MarkEnv) whose command line names gunicorn, in pid order.
func MarkedGunicorns(procs map[int]Proc, marks ...string) []int {
	var out []int
	for pid, p := range procs {
		if p.State == 'Z' || !strings.Contains(p.Cmd, "gunicorn") {
			continue
		}
		env, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/environ")
		if err != nil {
			continue
		}
		for _, m := range marks {
			if bytes.Contains(env, []byte(m)) {
				out = append(out, pid)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// FDCount returns how many file descriptors pid has open.
func FDCount(pid int) (int, error) {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0, fmt.Errorf("counting fds of pid %d: %w", pid, err)
	}
	return len(ents), nil
}

// ScrapeGauges returns the values of the unlabelled metrics names, in order,
// from the Prometheus text at url; a name missing from the text is an error.
func ScrapeGauges(url string, names ...string) ([]float64, error) {
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	resp, err := c.Get(url)
	if err != nil {
		return nil, fmt.Errorf("scraping %s: %w", url, err)
	}
	defer resp.Body.Close()
	vals := make([]float64, len(names))
	found := make([]bool, len(names))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		for i, name := range names {
			if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil {
					return nil, fmt.Errorf("%s at %s: %w", name, url, err)
				}
				vals[i], found[i] = f, true
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", url, err)
	}
	for i, ok := range found {
		if !ok {
			return nil, fmt.Errorf("%s: no metric %s", url, names[i])
		}
	}
	return vals, nil
}
