package config

import (
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
	// need, and the App fields that differ (Go field names).
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

// inPlaceKeys are the App fields whose change leaves the processes alone
// (Steering applies when the listeners are next opened);
// restartKeys those that need new sockets. Any other field (what a
// generation runs, including fields added later) needs a reload.
var (
	inPlaceKeys = []string{"Line", "Restart", "Required", "Autostart", "After", "Requires", "StopSignal",
		"StopTimeout", "StartTimeout", "StartSettle", "Backoff", "Reload", "Health", "Instances", "InstanceOf", "Instance",
		"Steering"}
	restartKeys = []string{"Listen", "Kind"}
)

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
	keys := fieldsDiffer(reflect.ValueOf(unplaced(old)), reflect.ValueOf(unplaced(new)))
	keys = slices.DeleteFunc(keys, func(k string) bool { return k == "Line" })
	out := AppDiff{Name: new.Name}
	if len(keys) == 0 {
		return out
	}
	out.Change, out.Keys = Changed, keys
	for _, k := range keys {
		switch {
		case slices.Contains(restartKeys, k):
			out.Action = ActionRestart
		case !slices.Contains(inPlaceKeys, k):
			out.Action = max(out.Action, ActionReload)
		}
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
