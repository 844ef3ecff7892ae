// Package errinbox is an app's error inbox: Python tracebacks read from its
// stderr, grouped by fingerprint (exception type and the innermost frames
// of the app's own code), and the Gunicorn master's lines about workers
// that timed out or were killed by a signal.
//
// Watch reads an app's log through a logs.Tap: the app is never held back;
// lines the parser is too slow for are dropped and counted. The inbox is
// bounded: at most Options.MaxGroups groups, the least recently seen
// evicted first, and at most Options.MaxTypes exception type names, the
// rest counted as "other".
package errinbox

import (
	"container/list"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Bounds of an inbox, the defaults of Options.
const (
	DefaultMaxGroups = 200
	DefaultMaxTypes  = 50
)

// OtherType is the exception label of the types beyond Options.MaxTypes.
const OtherType = "other"

// Group is one fingerprint's exceptions.
type Group struct {
	Fingerprint string `json:"fingerprint"`
	// Exception is the type name; Message the whole exception line of the
	// latest occurrence.
	Exception string `json:"exception"`
	Message   string `json:"message"`
	// Where is the innermost frame of the app's code ("" when none).
	Where string `json:"where,omitempty"`
	// Count is the occurrences since the group was created (an evicted
	// group that comes back starts again).
	Count     uint64    `json:"count"`
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	// Generation is the generation whose stderr carried the first
	// occurrence (a Gunicorn USR2 child writes to its parent's pipe, so
	// its lines carry the parent's generation).
	Generation int `json:"generation"`
	// Traceback is the latest occurrence's full traceback.
	Traceback []string `json:"traceback"`
}

// Counts are an inbox's counters, for metrics: they only grow, evictions
// aside.
type Counts struct {
	// Exceptions counts tracebacks by exception type (at most MaxTypes
	// names, then OtherType).
	Exceptions map[string]uint64
	// WorkerTimeouts counts "WORKER TIMEOUT" lines.
	WorkerTimeouts uint64
	// WorkerKilled counts workers killed by a signal, by signal name.
	WorkerKilled map[string]uint64
	// Dropped counts stderr lines the parser was too slow to read.
	Dropped uint64
}

// Options bound an inbox; zero fields take the defaults.
type Options struct {
	MaxGroups int
	MaxTypes  int
}

// Inbox holds one app's groups and counters. Safe for concurrent use.
type Inbox struct {
	opt Options
	// dropped reads the lines lost before the parser (nil: none).
	dropped func() uint64

	mu       sync.Mutex
	groups   map[string]*list.Element // of *Group
	lru      *list.List               // front: most recently seen
	types    map[string]uint64
	timeouts uint64
	killed   map[string]uint64
	// deaths counts worker timeouts and kills by generation, for the
	// last maxDeathGens generations seen.
	deaths map[int]uint64
}

// maxDeathGens is how many generations' worker deaths an inbox keeps.
const maxDeathGens = 16

// New returns an empty inbox.
func New(opt Options) *Inbox {
	if opt.MaxGroups <= 0 {
		opt.MaxGroups = DefaultMaxGroups
	}
	if opt.MaxTypes <= 0 {
		opt.MaxTypes = DefaultMaxTypes
	}
	return &Inbox{opt: opt, groups: map[string]*list.Element{}, lru: list.New(), types: map[string]uint64{}, killed: map[string]uint64{}, deaths: map[int]uint64{}}
}

// Record adds one traceback read at t from generation gen's stderr; a
// traceback without an exception line is ignored (false).
func (in *Inbox) Record(tb []string, gen int, t time.Time) bool {
	e, ok := Parse(tb)
	if !ok {
		return false
	}
	fp := e.Fingerprint()
	in.mu.Lock()
	defer in.mu.Unlock()
	in.countType(e.Type)
	if el, ok := in.groups[fp]; ok {
		g := el.Value.(*Group)
		g.Count++
		g.LastSeen, g.Message, g.Traceback = t, e.Line, tb
		in.lru.MoveToFront(el)
		return true
	}
	g := &Group{Fingerprint: fp, Exception: e.Type, Message: e.Line, Where: e.Where(), Count: 1,
		FirstSeen: t, LastSeen: t, Generation: gen, Traceback: tb}
	in.groups[fp] = in.lru.PushFront(g)
	for in.lru.Len() > in.opt.MaxGroups {
		old := in.lru.Back()
		delete(in.groups, old.Value.(*Group).Fingerprint)
		in.lru.Remove(old)
	}
	return true
}

// countType counts one exception of type name. in.mu is held.
func (in *Inbox) countType(name string) {
	if _, ok := in.types[name]; !ok && len(in.types) >= in.opt.MaxTypes {
		name = OtherType
	}
	in.types[name]++
}

// WorkerTimeout counts one "WORKER TIMEOUT" line.
func (in *Inbox) WorkerTimeout() {
	in.mu.Lock()
	in.timeouts++
	in.mu.Unlock()
}

// WorkerKilled counts one worker killed by signal sig (a name such as
// "SIGKILL").
func (in *Inbox) WorkerKilled(sig string) {
	in.mu.Lock()
	in.killed[sig]++
	in.mu.Unlock()
}

// WorkerDied counts one worker of generation gen that timed out or was
// killed (see WorkerTimeout, WorkerKilled), keeping the counts of the
// last maxDeathGens generations.
func (in *Inbox) WorkerDied(gen int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.deaths[gen]++
	for g := range in.deaths {
		if g <= gen-maxDeathGens {
			delete(in.deaths, g)
		}
	}
}

// WorkerDeaths returns how many workers of generation gen timed out or
// were killed (0 for a generation not among the last kept, or a nil Inbox).
func (in *Inbox) WorkerDeaths(gen int) uint64 {
	if in == nil {
		return 0
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.deaths[gen]
}

// MinNewGroup is how many times an exception group first seen in a canary
// generation must occur for the canary to be worse (see NewGroups).
const MinNewGroup = 3

// NewGroups judges a canary generation gen on its exceptions: one phrase
// ("new exception ValueError: bad (3 times)") per group first seen in gen
// that occurred at least MinNewGroup times, most recently seen first; nil
// for none or a nil Inbox.
func (in *Inbox) NewGroups(gen int) []string {
	if in == nil {
		return nil
	}
	var out []string
	for _, g := range in.Groups() {
		if g.Generation != gen || g.Count < MinNewGroup {
			continue
		}
		what := g.Message
		if !strings.HasPrefix(what, g.Exception) {
			what = g.Exception + ": " + what
		}
		out = append(out, fmt.Sprintf("new exception %s (%d times)", what, g.Count))
	}
	return out
}

// Groups returns copies of the groups, most recently seen first.
func (in *Inbox) Groups() []Group {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make([]Group, 0, in.lru.Len())
	for el := in.lru.Front(); el != nil; el = el.Next() {
		g := *el.Value.(*Group)
		g.Traceback = slices.Clone(g.Traceback)
		out = append(out, g)
	}
	return out
}

// Counts returns a copy of the counters.
func (in *Inbox) Counts() Counts {
	in.mu.Lock()
	c := Counts{Exceptions: maps.Clone(in.types), WorkerTimeouts: in.timeouts, WorkerKilled: maps.Clone(in.killed)}
	in.mu.Unlock()
	if in.dropped != nil {
		c.Dropped = in.dropped()
	}
	return c
}
