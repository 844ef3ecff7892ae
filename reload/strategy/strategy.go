// Package strategy is the registry of reload strategies: each one's name,
// the app kinds that may name it, the kinds it is the default for, and the
// properties the supervisor acts on. Every list of strategies a user sees
// (the configuration's errors, supctl's usage and completion, the control
// API's errors) is read from here, and a test holds the manual pages to it.
//
// Contract: this package imports nothing of the project, so that supctl,
// config and reload all read it; the steps a strategy runs live in reload
// (reload.Run), one file per strategy there too.
package strategy

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Strategy is a reload strategy's name as the configuration and
// supctl --strategy spell it.
type Strategy string

// String returns the name.
func (s Strategy) String() string { return string(s) }

// Info describes one strategy.
type Info struct {
	Name Strategy
	// Summary says in one line what a reload with it does.
	Summary string
	// Kinds are the app kinds ("gunicorn", "process") that may name it.
	Kinds []string
	// DefaultFor are the kinds whose apps use it when they name none.
	DefaultFor []string
	// Instead maps a kind to the strategy its apps run when they name this
	// one (a process app's swap is an overlap).
	Instead map[string]Strategy
	// Hint follows the error for an app of a kind that may not name it.
	Hint string
	// ReExec is true when the serving master re-executes itself in place:
	// the new master inherits the serving sockets (its workers take
	// connections before the gate), and its generations are started from
	// the release link so that the re-exec follows it.
	ReExec bool
	// Exclusive is true when the app never runs two generations at once:
	// the old generation's whole process tree ends (a singleton's child may
	// hold its lock) before the new one starts.
	Exclusive bool
	// Fallback is what runs instead where this strategy cannot reach the
	// new release, or would re-exec an unhealthy master ("": none).
	Fallback Strategy
}

// registry lists every strategy, in the order usage, completion and errors
// show them.
var registry = []Info{swap, usr2, restart, overlap}

// ErrUnknown is wrapped by the error for a name no strategy has.
var ErrUnknown = errors.New("unknown strategy")

// All returns every strategy's Info, in registry order. The Infos share
// their slices and maps with the registry: callers read them only.
func All() []Info { return slices.Clone(registry) }

// Names returns every strategy's name, in registry order.
func Names() []string {
	out := make([]string, len(registry))
	for i, in := range registry {
		out[i] = string(in.Name)
	}
	return out
}

// Quoted returns the names quoted and joined for an error: `"a", "b" or "c"`.
func Quoted() string {
	names := Names()
	for i, n := range names {
		names[i] = fmt.Sprintf("%q", n)
	}
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Info returns s's description; ok is false (and the Info zero) when no
// strategy is named s.
func (s Strategy) Info() (in Info, ok bool) {
	for _, in := range registry {
		if in.Name == s {
			return in, true
		}
	}
	return Info{}, false
}

// ReExec reports whether s re-executes the serving master in place (see
// Info.ReExec); false for an unknown name.
func (s Strategy) ReExec() bool {
	in, _ := s.Info()
	return in.ReExec
}

// Exclusive reports whether s never runs two generations at once (see
// Info.Exclusive); false for an unknown name.
func (s Strategy) Exclusive() bool {
	in, _ := s.Info()
	return in.Exclusive
}

// Fallback returns what runs instead of s where s cannot (see
// Info.Fallback), or s itself when it has no fallback.
func (s Strategy) Fallback() Strategy {
	if in, _ := s.Info(); in.Fallback != "" {
		return in.Fallback
	}
	return s
}

// Parse returns the strategy named name, or an error wrapping ErrUnknown
// that lists the names there are.
func Parse(name string) (Strategy, error) {
	if _, ok := Strategy(name).Info(); !ok {
		return "", fmt.Errorf("%w %q (want %s)", ErrUnknown, name, Quoted())
	}
	return Strategy(name), nil
}

// Default returns the strategy of an app of kind that names none ("" for a
// kind no strategy is the default of).
func Default(kind string) Strategy {
	for _, in := range registry {
		if slices.Contains(in.DefaultFor, kind) {
			return in.Name
		}
	}
	return ""
}

// For returns the strategy an app of kind runs when it names name: the
// kind's default for "", the Instead of that kind where there is one. The
// error wraps ErrUnknown for an unknown name, or says which kinds may name
// it.
func For(name, kind string) (Strategy, error) {
	if name == "" {
		return Default(kind), nil
	}
	s, err := Parse(name)
	if err != nil {
		return "", err
	}
	in, _ := s.Info()
	if !slices.Contains(in.Kinds, kind) {
		msg := fmt.Sprintf("%q is only valid for kind %s", name, quoteKinds(in.Kinds))
		if in.Hint != "" {
			msg += " (" + in.Hint + ")"
		}
		return "", errors.New(msg)
	}
	if alt, ok := in.Instead[kind]; ok {
		return alt, nil
	}
	return s, nil
}

// quoteKinds joins kinds as `"a"` or `"a" or "b"`.
func quoteKinds(kinds []string) string {
	q := make([]string, len(kinds))
	for i, k := range kinds {
		q[i] = fmt.Sprintf("%q", k)
	}
	return strings.Join(q, " or ")
}
