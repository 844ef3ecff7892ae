package config

import (
	"fmt"
	"reflect"
	"slices"
)

// Change says what an update does to one app.
type Change int

const (
	// Unchanged: the app is left alone; its processes keep running.
	Unchanged Change = iota
	// Added: the app is new; it starts (unless autostart = false).
	Added
	// Removed: the app is gone from the file; it stops and its sockets close.
	Removed
	// Changed: the app's table differs; Action says how it is applied.
	Changed
)

func (c Change) String() string {
	return [...]string{"unchanged", "added", "removed", "changed"}[c]
}

// Action is how a changed app takes its new configuration.
type Action int

const (
	// ActionInPlace: only the supervisor's handling changes (health checks,
	// restart policy, timeouts, order, readiness); the processes are not
	// touched.
	ActionInPlace Action = iota
	// ActionReload: what a generation runs changed (env, command, virtualenv,
	// args, workers, directory); a Gunicorn app gets a zero-downtime
	// reload, a process app a restart.
	ActionReload
	// ActionRestart: the listen addresses or the kind changed; the app restarts
	// on the new sockets.
	ActionRestart
)

func (a Action) String() string {
	return [...]string{"in place", "reload", "restart"}[a]
}

// AppDiff is one app's part of a Diff.
type AppDiff struct {
	Name   string
	Change Change
	// Action and Keys are set for Changed: the strongest action its keys
	// need, and the configuration keys that differ, as the file spells
	// them ("env", "health.path"), each once.
	Action Action
	Keys   []string
}

// Diff is what applying a new configuration to a running one does.
type Diff struct {
	// Apps lists the apps of the new file in its order, then the removed ones.
	Apps []AppDiff
	// Supervisor lists the [supervisor] fields that differ; an update
	// cannot apply them (the supervisor must be restarted).
	Supervisor []string
	// Groups is true when the [group.NAME] tables differ (applied by an update).
	Groups bool
}

// updateTag is the struct tag on each App field naming its update class.
const updateTag = "update"

// fieldClass is how an update applies a change to one App field.
type fieldClass struct {
	action Action
	// ignore: a difference in the field is no change (Line).
	ignore bool
}

// fieldClasses maps the words of the update tag to their class.
var fieldClasses = map[string]fieldClass{
	"inplace": {action: ActionInPlace},
	"reload":  {action: ActionReload},
	"restart": {action: ActionRestart},
	"ignore":  {ignore: true},
}

// appFieldClass returns the class App field name declares in its update
// tag; ok is false for a field without a known one.
func appFieldClass(name string) (c fieldClass, ok bool) {
	f, found := reflect.TypeFor[App]().FieldByName(name)
	if !found {
		return fieldClass{}, false
	}
	c, ok = fieldClasses[f.Tag.Get(updateTag)]
	return c, ok
}

// Compare returns the Diff that takes the running configuration old to new.
func Compare(old, new *Config) *Diff {
	d := &Diff{Groups: !reflect.DeepEqual(old.Groups, new.Groups)}
	d.Supervisor = fieldsDiffer(reflect.ValueOf(old.Supervisor), reflect.ValueOf(new.Supervisor))
	for _, a := range new.Apps {
		prev := old.App(a.Name)
		if prev == nil {
			d.Apps = append(d.Apps, AppDiff{Name: a.Name, Change: Added})
			continue
		}
		d.Apps = append(d.Apps, compareApp(prev, a))
	}
	for _, a := range old.Apps {
		if new.App(a.Name) == nil {
			d.Apps = append(d.Apps, AppDiff{Name: a.Name, Change: Removed})
		}
	}
	return d
}

// compareApp classifies the change from old to new of one app.
func compareApp(old, new *App) AppDiff {
	out := AppDiff{Name: new.Name}
	ov, nv := reflect.ValueOf(unplaced(old)), reflect.ValueOf(unplaced(new))
	for _, k := range fieldsDiffer(ov, nv) {
		c, ok := appFieldClass(k)
		if !ok {
			// A field without a class (the test of the tags fails): the
			// strongest action, so a change is never applied short.
			c = fieldClass{action: ActionRestart}
		}
		if c.ignore {
			continue
		}
		f, _ := ov.Type().FieldByName(k)
		for _, key := range changedKeys(f, ov.FieldByName(k), nv.FieldByName(k)) {
			if !slices.Contains(out.Keys, key) {
				out.Keys = append(out.Keys, key)
			}
		}
		out.Change = Changed
		out.Action = max(out.Action, c.action)
	}
	return out
}

// keyTag is the struct tag naming the configuration key a field is read
// from (sub-table keys as "health.path"; "-" for a field derived from
// others, which name the change); a struct field without one is named by
// the keys of its own fields.
const keyTag = "key"

// changedKeys returns the configuration keys of field f whose values a and
// b differ in: f's key tag, else (a struct) the keys of its differing
// fields, else f's Go name.
func changedKeys(f reflect.StructField, a, b reflect.Value) []string {
	switch key := f.Tag.Get(keyTag); key {
	case "-":
		return nil
	case "":
	default:
		return []string{key}
	}
	if f.Type.Kind() != reflect.Struct {
		return []string{f.Name}
	}
	var out []string
	for _, name := range fieldsDiffer(a, b) {
		sub, _ := f.Type.FieldByName(name)
		out = append(out, changedKeys(sub, a.FieldByName(name), b.FieldByName(name))...)
	}
	return out
}

// unplaced is a copy of a whose listeners do not say where in the file they
// were written: moving a listen line is no change.
func unplaced(a *App) App {
	c := *a
	c.Listen = make([]Listener, len(a.Listen))
	for i, l := range a.Listen {
		l.File, l.Line, l.Key = "", 0, ""
		c.Listen[i] = l
	}
	return c
}

// fieldsDiffer lists the names of the fields of two structs of one type
// whose values are not deeply equal.
func fieldsDiffer(a, b reflect.Value) []string {
	var out []string
	for i := range a.NumField() {
		if !reflect.DeepEqual(a.Field(i).Interface(), b.Field(i).Interface()) {
			out = append(out, a.Type().Field(i).Name)
		}
	}
	return out
}

// UpdatePlan is what applying a new configuration to the running one
// does, for the apps an update concerns: it is pure (nothing runs); the
// supervisor executes it.
type UpdatePlan struct {
	// Apps are the apps the update concerns, in diff order (see Compare).
	Apps []AppUpdate
	// Merged is the configuration once the plan is applied: the new
	// version of each app in Apps, the running version of the others; the
	// new groups when Apps holds every app of the diff, else the running
	// groups without removed apps. The [supervisor] table stays the
	// running one's (an update cannot apply it).
	Merged *Config
}

// AppUpdate is one app's part of an UpdatePlan: its diff entry and its
// table in the new configuration (nil for a removed app).
type AppUpdate struct {
	AppDiff
	App *App
}

// PlanUpdate plans the update from the running configuration cur to next
// of the apps in only (every app of the diff when only is empty). A name
// in only that is neither in cur nor in next is an error wrapping
// ErrNoSuchApp.
func PlanUpdate(cur, next *Config, only []string) (*UpdatePlan, error) {
	d := Compare(cur, next)
	sel := d.Apps
	if len(only) > 0 {
		sel = nil
		for _, n := range only {
			i := slices.IndexFunc(d.Apps, func(a AppDiff) bool { return a.Name == n })
			if i < 0 {
				return nil, fmt.Errorf("%w: %q", ErrNoSuchApp, n)
			}
			sel = append(sel, d.Apps[i])
		}
	}
	p := &UpdatePlan{Apps: make([]AppUpdate, len(sel))}
	for i, ad := range sel {
		p.Apps[i] = AppUpdate{AppDiff: ad, App: next.App(ad.Name)}
	}
	p.Merged = mergeConfig(cur, next, sel, len(d.Apps))
	return p, nil
}

// mergeConfig is the configuration after applying the apps of plan to cur
// (see UpdatePlan.Merged); all is how many apps the diff of cur and next
// has.
func mergeConfig(cur, next *Config, plan []AppDiff, all int) *Config {
	in := map[string]bool{}
	for _, u := range plan {
		in[u.Name] = true
	}
	inNext := make(map[string]bool, len(next.Apps))
	out := &Config{Path: cur.Path, Supervisor: cur.Supervisor}
	for _, a := range next.Apps {
		inNext[a.Name] = true
		switch prev := cur.App(a.Name); {
		case in[a.Name]:
			out.Apps = append(out.Apps, a)
		case prev != nil:
			out.Apps = append(out.Apps, prev)
		}
	}
	for _, a := range cur.Apps {
		if !inNext[a.Name] && !in[a.Name] {
			out.Apps = append(out.Apps, a)
		}
	}
	if len(plan) == all {
		out.Groups = next.Groups
		return out
	}
	kept := make(map[string]bool, len(out.Apps))
	for _, a := range out.Apps {
		kept[a.Name] = true
	}
	for _, g := range cur.Groups {
		g.Apps = slices.DeleteFunc(slices.Clone(g.Apps), func(n string) bool { return !kept[n] })
		out.Groups = append(out.Groups, g)
	}
	return out
}

// Outcome is a one-line account of the update of d's app that ended with
// err (nil: done): "added", "changed [env]: reload", "removed: ...".
func (d AppDiff) Outcome(err error) string {
	s := d.Change.String()
	if d.Change == Changed {
		s += fmt.Sprintf(" %v: %s", d.Keys, d.Action)
	}
	if err != nil {
		s += ": " + err.Error()
	}
	return s
}
