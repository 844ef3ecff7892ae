// Package contain finds and ends the processes an app's generations leave
// behind: each generation lives in a home (a leaf cgroup below the app's
// cgroup, or, for an app without a cgroup, a mark in its processes'
// environment), Homes counts the live generations in each home, and the
// processes that left a generation's process group (setsid daemons, double
// forks) are found there and ended when the last generation in the home
// ends, or when the app stops.
//
// Contract: no process is waited for here (proc's reaper does that);
// every kill is followed by a bounded wait (Limit), then logged.
package contain

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gunisup/supervisor/proc"
)

// AppMarkVar names, in the environment of the processes of an app that has
// no cgroup, the app they belong to: a daemon that left the app's process
// tree and group and re-parented to the supervisor (child subreaper, or PID
// 1) is found by it. GenMarkVar names the generation they belong to (see
// Home).
const (
	AppMarkVar = "GUNISUP_APP"
	GenMarkVar = "GUNISUP_GEN"
)

// Limit bounds the wait for a finished generation's strays to die after
// SIGKILL, and for its leaf cgroup to be removed.
const Limit = 5 * time.Second

// Home is where a generation's strays are found: its leaf cgroup below
// the app's (Cgroup), or, for an app without a cgroup, the value of
// GenMarkVar in its processes' environment (Mark). A usr2 successor shares
// its predecessor's home (it is forked by the old master and inherits its
// cgroup and environment): the home ends when the last generation in it
// ends, so the strays of a usr2 chain live until the chain's last
// generation ends (a stop, a restart, a swap or restart reload, a crash).
// The zero value is no home (a generation handed over by an image that ran
// it in the app's cgroup itself): its strays end with the app's stop.
type Home struct {
	Cgroup string
	Mark   string
}

// key names the home in Homes ("" for none).
func (h Home) key() string {
	switch {
	case h.Cgroup != "":
		return h.Cgroup
	case h.Mark != "":
		return GenMarkVar + "=" + h.Mark
	}
	return ""
}

// Homes counts the live generations in each home of one supervisor and
// ends what they leave behind. Managed reports whether a pid is one the
// supervisor started and waits for (proc.Reaper.Managed): such a process
// is never a stray; Logger gets what was ended and what survived. Both are
// required; the count starts empty. Safe for concurrent use.
type Homes struct {
	Managed func(pid int) bool
	Logger  *slog.Logger
	mu      sync.Mutex
	n       map[string]int
}

// New makes the home of generation id of app, whose cgroup is cg (nil:
// none): a fresh leaf cgroup "s<pid>.g<id>" below cg, opened for
// CLONE_INTO_CGROUP (the caller closes it once the generation is forked),
// or, without a cgroup, the mark "s<pid>.g<id>". A cgroup that cgroup.kill
// was written to is never spawned into: the app's own cgroup is killed by
// a stop, a leaf when its generation ends. The supervisor's pid makes the
// name unique to this run (a self-upgrade keeps the pid and the
// numbering), as the pidfile's is: a killed predecessor's orphans, still
// serving in their own leaves and marked with their own run, are never
// taken for this run's generations.
func New(app string, cg *proc.Cgroup, id int) (Home, *proc.Cgroup, error) {
	name := homeName(os.Getpid(), id)
	if cg == nil {
		return Home{Mark: name}, nil, nil
	}
	leaf, err := cg.Leaf(name)
	if err != nil {
		return Home{}, nil, fmt.Errorf("app %s generation %d: %w", app, id, err)
	}
	return Home{Cgroup: leaf.Path}, leaf, nil
}

// Enter counts one more live generation in h.
func (hs *Homes) Enter(h Home) {
	if k := h.key(); k != "" {
		hs.mu.Lock()
		if hs.n == nil {
			hs.n = map[string]int{}
		}
		hs.n[k]++
		hs.mu.Unlock()
	}
}

// Leave counts a generation out of its home h and reports whether it was
// the last generation there. Call it once per generation.
func (hs *Homes) Leave(h Home) bool {
	k := h.key()
	if k == "" {
		return false
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.n[k] <= 1 {
		delete(hs.n, k) // delete on a nil map is a no-op
		return true
	}
	hs.n[k]--
	return false
}

// Shared reports whether more than one live generation is in h (a usr2
// pair).
func (hs *Homes) Shared(h Home) bool {
	k := h.key()
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return k != "" && hs.n[k] > 1
}

// OfAdopted finds the home of a generation a previous image handed over,
// whose main process is pid, of an app whose cgroup is cg (nil: none): the
// leaf cgroup pid is in (when that is a child of cg), or its generation
// mark.
func OfAdopted(cg *proc.Cgroup, pid int) Home {
	if cg != nil {
		if dir, err := proc.CgroupOf(pid); err == nil && filepath.Dir(dir) == cg.Path {
			return Home{Cgroup: dir}
		}
		return Home{}
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
	if err != nil {
		return Home{}
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if v, ok := strings.CutPrefix(kv, GenMarkVar+"="); ok {
			return Home{Mark: v}
		}
	}
	return Home{}
}

// Mark adds the app and generation marks (AppMarkVar, GenMarkVar) to the
// environment of a process of an app without a cgroup (h has a mark).
func Mark(app string, h Home, spec *proc.Spec) {
	if h.Mark != "" {
		spec.Env = append(spec.Env, AppMarkVar+"="+app, GenMarkVar+"="+h.Mark)
	}
}

// homeName is the leaf cgroup name and the mark of generation id of the
// supervisor run pid (see New).
func homeName(pid, id int) string {
	return "s" + strconv.Itoa(pid) + ".g" + strconv.Itoa(id)
}
